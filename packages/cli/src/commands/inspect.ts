import { open } from "node:fs/promises";
import { openSafetensors, shapeElementCount, type DType } from "@stmerge/core-tensors";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { formatBytes, formatCount, formatParams } from "../format.js";
import { renderTable } from "../render-table.js";
import { escapeControl } from "../terminal-text.js";

export interface InspectReport {
  readonly file: string;
  readonly fileSize: number;
  readonly headerBytes: number;
  readonly tensorCount: number;
  readonly parameterCount: number;
  readonly dtypes: Record<string, number>;
  readonly metadata: Record<string, string>;
  readonly keys: { name: string; dtype: DType; shape: readonly number[] }[];
}

/** Pickle-based checkpoints start with a zip or pickle signature; say so instead of a header error. */
async function sniffPickle(path: string): Promise<string | undefined> {
  const handle = await open(path, "r").catch(() => undefined);
  if (!handle) return undefined;
  try {
    const head = new Uint8Array(4);
    await handle.read(head, 0, 4, 0);
    if (head[0] === 0x50 && head[1] === 0x4b) return "a PyTorch zip checkpoint";
    if (head[0] === 0x80 && head[1] !== undefined && head[1] <= 5) return "a pickle file";
    return undefined;
  } finally {
    await handle.close();
  }
}

export async function inspectSafetensors(path: string, keyLimit: number): Promise<InspectReport> {
  let source;
  try {
    source = await openSafetensors(path);
  } catch (error) {
    const kind = (error as { code?: string }).code?.startsWith("SAFETENSORS") ? await sniffPickle(path) : undefined;
    if (kind) throw new CliError("NOT_SAFETENSORS", `${path}: this is ${kind}, not safetensors; run \`stmerge audit\` or \`stmerge convert\` on it`, { file: path });
    throw error;
  }
  try {
    const dtypes: Record<string, number> = {};
    let parameterCount = 0;
    for (const d of source.descriptors) {
      dtypes[d.dtype] = (dtypes[d.dtype] ?? 0) + 1;
      parameterCount += shapeElementCount(d.shape);
    }
    return {
      file: path,
      fileSize: source.fileSize,
      headerBytes: source.header.headerLength,
      tensorCount: source.descriptors.length,
      parameterCount,
      dtypes,
      metadata: { ...source.metadata },
      keys: [...source.descriptors]
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
        .slice(0, keyLimit)
        .map((d) => ({ name: d.name, dtype: d.dtype, shape: d.shape })),
    };
  } finally {
    await source.close();
  }
}

function truncate(value: string, max: number): string {
  const flat = value.replace(/\s+/g, " ");
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function registerInspectCommand(program: Command, ctx: CliContext): void {
  program
    .command("inspect")
    .description("show what a safetensors file holds: tensors, dtypes, parameters, metadata (reads the header only)")
    .argument("<file>", "a .safetensors file")
    .option("--json", "print the report as JSON")
    .option("-n, --keys <count>", "how many tensor names to list", "10")
    .option("--all-keys", "list every tensor name")
    .addHelpText("after", "\nExamples:\n  $ stmerge inspect model.safetensors\n  $ stmerge inspect model.safetensors --json | jq .dtypes\n  $ stmerge inspect vae.safetensors --all-keys")
    .action(async (file: string, options: { keys: string; allKeys?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const limit = options.allKeys ? Number.POSITIVE_INFINITY : Number.parseInt(options.keys, 10);
      if (!Number.isFinite(limit) && !options.allKeys) throw new CliError("BAD_FLAG", `--keys must be a number, got ${JSON.stringify(options.keys)}`, { exitCode: 2 });
      const report = await inspectSafetensors(file, limit);
      const { file: reportPath, fileSize, ...details } = report;
      out.result({ command: "inspect", path: reportPath, sizeBytes: fileSize, ...details });
      out.line(escapeControl(report.file));
      out.line(`  size        ${formatBytes(report.fileSize)} (header ${formatBytes(report.headerBytes)})`);
      out.line(`  tensors     ${formatCount(report.tensorCount)}`);
      out.line(`  parameters  ${formatCount(report.parameterCount)} (${formatParams(report.parameterCount)})`);
      out.line(`  dtypes      ${Object.entries(report.dtypes).map(([d, n]) => `${d} ×${n}`).join(", ") || "none"}`);
      const meta = Object.entries(report.metadata);
      out.line(`  metadata    ${meta.length === 0 ? "none" : `${meta.length} entr${meta.length === 1 ? "y" : "ies"}`}`);
      for (const [k, v] of meta) out.line(`    ${escapeControl(truncate(k, 100))}: ${escapeControl(truncate(v, 100))}`);
      if (report.keys.length > 0) {
        out.line("");
        out.text(renderTable(report.keys, [
          { header: report.keys.length < report.tensorCount ? `first ${report.keys.length} of ${report.tensorCount} tensors` : "tensor", value: (k) => k.name },
          { header: "dtype", value: (k) => k.dtype },
          { header: "shape", value: (k) => `[${k.shape.join(", ")}]` },
        ]));
      }
    });
}
