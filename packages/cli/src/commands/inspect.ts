import { basename, resolve } from "node:path";
import { describeModelFile } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { formatBytes, formatCount, formatParams } from "../format.js";
import { renderPanel, timeRow, type PanelRow } from "../render-panel.js";
import { renderTable } from "../render-table.js";
import { escapeControl } from "../terminal-text.js";

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
      if (!options.allKeys && !/^\d+$/.test(options.keys)) throw new CliError("BAD_FLAG", `--keys must be a whole number (0 or more), got ${JSON.stringify(options.keys)}`, { exitCode: 2 });
      const limit = options.allKeys ? Number.POSITIVE_INFINITY : Number.parseInt(options.keys, 10);
      const started = Date.now();
      const report = await describeModelFile(resolve(ctx.io.cwd, file), { keyLimit: limit });
      const { file: reportPath, fileSize, ...details } = report;
      out.result({ command: "inspect", path: reportPath, sizeBytes: fileSize, ...details });
      // Details first (metadata, tensor names); the summary closes the output as a panel.
      const meta = Object.entries(report.metadata);
      if (meta.length > 0) out.line(`metadata (${meta.length} entr${meta.length === 1 ? "y" : "ies"})`);
      for (const [k, v] of meta) out.line(`  ${escapeControl(truncate(k, 100))}: ${escapeControl(truncate(v, 100))}`);
      if (report.keys.length > 0) {
        if (meta.length > 0) out.line("");
        out.text(renderTable(report.keys, [
          { header: report.keys.length < report.tensorCount ? `first ${report.keys.length} of ${report.tensorCount} tensors` : "tensor", value: (k) => k.name },
          { header: "dtype", value: (k) => k.dtype },
          { header: "shape", value: (k) => `[${k.shape.join(", ")}]` },
        ]));
      }
      const t = out.theme;
      const arch = report.architecture;
      const rows: PanelRow[] = [
        ["file", t.path(escapeControl(report.file))],
        ["size", `${t.number(formatBytes(report.fileSize))} ${t.dim(`(header ${formatBytes(report.headerBytes)})`)}`],
        ["kind", `${escapeControl(report.kind)}; ${arch.id === "unknown" ? "architecture not recognised" : `${escapeControl(arch.label)}${arch.variant !== "standard" ? ` ${arch.variant}` : ""}, ${arch.prediction}`}${arch.evidence[0] ? ` ${t.dim(`(${escapeControl(arch.evidence[0])})`)}` : ""}`],
        ["tensors", t.number(formatCount(report.tensorCount))],
        ["parameters", `${t.number(formatCount(report.parameterCount))} ${t.dim(`(${formatParams(report.parameterCount)})`)}`],
        ["dtypes", Object.entries(report.dtypes).map(([d, n]) => `${d} ×${n}`).join(", ") || "none"],
      ];
      if (report.lora) {
        const l = report.lora;
        rows.push(
          ["lora", `${l.modules} modules (${Object.entries(l.formats).map(([f, n]) => `${n} ${f}`).join(", ")}; ${l.conventions.join(", ")} names) for ${l.baseArchitecture}${l.evidence ? ` (${l.evidence})` : ""}`],
          ["rank", `${l.rank ? (l.rank.min === l.rank.max ? l.rank.min : `${l.rank.min}–${l.rank.max}`) : "n/a"}; alpha ${l.alphas ? l.alphas.join(", ") : "none (scale 1)"}`],
          ["targets", `${Object.entries(l.targets).map(([tg, n]) => `${tg} ${n}`).join(", ")}${l.unrecognised ? `; ${l.unrecognised} keys not recognised` : ""}`],
        );
      }
      rows.push(
        ["metadata", meta.length === 0 ? "none" : `${meta.length} entr${meta.length === 1 ? "y" : "ies"}`],
        ["read", t.dim(report.lora ? "the header and the alpha scalars; wrote nothing" : "the header only; wrote nothing")],
        ["time", timeRow(Date.now() - started, [], t)],
      );
      // The next step where one is obvious: a checkpoint's identity for CivitAI and the cache.
      if (report.kind === "sd-checkpoint") rows.push(["next", `stmerge hash ${escapeControl(basename(report.file))}`]);
      out.text(renderPanel(`${t.success(t.glyphs.ok)} ${escapeControl(basename(report.file))}`, rows, t, out.columns));
    });
}
