import { basename, resolve } from "node:path";
import { auditCheckpoint, type AuditReport } from "@stmerge/safe-pickle";
import { sniffFile } from "@stmerge/core-tensors";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { ExitRequest } from "../cli-error.js";
import { renderPanel, timeRow, type PanelRow } from "../render-panel.js";
import { escapeControl } from "../terminal-text.js";
import type { Theme } from "../theme.js";

const EXIT_BY_STATUS = { clean: 0, unsafe: 1, unreadable: 2 } as const;

/** Exit 1 when any file is unsafe, else 2 when any is unreadable, else 0. */
function auditExitCode(reports: readonly AuditReport[]): number {
  if (reports.some((r) => r.status === "unsafe")) return EXIT_BY_STATUS.unsafe;
  if (reports.some((r) => r.status === "unreadable")) return EXIT_BY_STATUS.unreadable;
  return EXIT_BY_STATUS.clean;
}

/** Why a file is unsafe, in a few words: the globals torch.load would call, or the container's problem. */
function unsafeReason(report: AuditReport): string {
  const called = report.globals.filter((g) => g.verdict !== "allowed");
  const names = called.slice(0, 3).map((g) => `${g.verdict} ${g.module}.${g.name}`);
  if (called.length > 3) names.push(`${called.length - 3} more`);
  return names.join(", ") || report.error?.message || "not what torch.load would read";
}

/**
 * The closing panel: how many files were read and their verdicts; for unsafe files why, and that
 * `stmerge convert` refuses them; for clean ones the command that turns them into safetensors.
 */
function renderAuditPanel(reports: readonly AuditReport[], ms: number, t: Theme, columns: number): string {
  const count = (status: AuditReport["status"]): number => reports.filter((r) => r.status === status).length;
  const [clean, unsafe, unreadable] = [count("clean"), count("unsafe"), count("unreadable")];
  const rows: PanelRow[] = [
    ["read", `${t.number(String(reports.length))} file${reports.length === 1 ? "" : "s"}: ${t.success(`${clean} clean`)}, ${unsafe ? t.error(`${unsafe} unsafe`) : "0 unsafe"}, ${unreadable ? t.warning(`${unreadable} unreadable`) : "0 unreadable"} ${t.dim("(nothing executed)")}`],
  ];
  reports.filter((r) => r.status === "unsafe").forEach((r, i) => rows.push([i === 0 ? "why" : "", `${t.path(escapeControl(basename(r.file)))}: ${t.error(escapeControl(unsafeReason(r)))}`]));
  if (unsafe) rows.push(["convert", `${t.warning("refuses")} ${unsafe === 1 ? "it" : "them"} ${t.dim("(it loads only allow-listed globals; get a .safetensors release instead)")}`]);
  rows.push(["wrote", t.dim("nothing (audit only reads)")], ["time", timeRow(ms, [], t)]);
  const pickles = reports.filter((r) => r.status === "clean" && r.format !== undefined);
  const safetensors = reports.filter((r) => r.status === "clean" && r.format === undefined);
  const next =
    pickles.length === 1 ? `stmerge convert ${escapeControl(basename(pickles[0]!.file))}`
    : pickles.length > 1 ? "stmerge convert <folder> (converts every clean checkpoint in it)"
    : safetensors.length === 1 ? `stmerge inspect ${escapeControl(basename(safetensors[0]!.file))}`
    : undefined;
  if (next) rows.push(["next", next]);
  const title = unsafe ? `${t.error(t.glyphs.fail)} unsafe` : unreadable ? `${t.warning(t.glyphs.warn)} unreadable` : `${t.success(t.glyphs.ok)} clean`;
  return renderPanel(title, rows, t, columns);
}

export function registerAuditCommand(program: Command, ctx: CliContext): void {
  program
    .command("audit")
    .description("list every global a checkpoint's pickles reference, with a verdict (allowed, unknown, dangerous); executes nothing")
    .argument("<file...>", "checkpoints to scan (.ckpt/.pt/.pth/.bin/.pkl)")
    .option("--json", "print the reports as JSON")
    .addHelpText("after", "\nExit status: 0 all clean, 1 any file unsafe, 2 any file unreadable (and none unsafe).\n\nExamples:\n  $ stmerge audit downloaded.ckpt\n  $ stmerge audit models/*.pt --json")
    .action(async (files: string[], _options: unknown, command: Command) => {
      const out = ctx.output(command);
      const reports: AuditReport[] = [];
      const started = Date.now();
      for (const file of files) {
        const path = resolve(ctx.io.cwd, file);
        // A safetensors file is data only: there is no pickle to audit, and that is the good answer.
        // A missing file or a folder is unreadable, said once in words (the typed error's reason).
        const sniffed = await sniffFile(path).catch((error: Error & { code?: string }) => error);
        if (sniffed instanceof Error) {
          reports.push({ file: path, status: "unreadable", format: undefined, globals: [], error: { code: sniffed.code ?? "FILE_UNREADABLE", message: sniffed.message } });
          out.line(`${"UNREADABLE".padEnd(10)} ${escapeControl(path)}`);
          out.line(`  error     ${escapeControl(sniffed.message.startsWith(`${path}: `) ? sniffed.message.slice(path.length + 2) : sniffed.message)}`);
          continue;
        }
        // torch.load reads a zip by its central directory and anything else as a pickle, so a
        // safetensors-shaped file is clean only if safe-pickle finds nothing torch would run in it.
        const report = await auditCheckpoint(path);
        if (sniffed.kind === "safetensors" && report.status !== "unsafe" && report.format === undefined) {
          reports.push({ file: path, status: "clean", format: undefined, globals: [], error: undefined, note: "safetensors: holds no pickle, nothing in it can run code" } as AuditReport);
          out.line(`${"CLEAN".padEnd(10)} ${escapeControl(path)} (safetensors: holds no pickle, nothing in it can run code)`);
          continue;
        }
        reports.push(report);
        // Global names, keys and file names come from the file: escaped, so none can repaint this verdict line.
        out.line(`${report.status.toUpperCase().padEnd(10)} ${escapeControl(report.file)}${report.format ? ` (${escapeControl(report.format)})` : ""}`);
        for (const g of report.globals) {
          if (g.verdict === "allowed") continue;
          const first = g.occurrences[0]!;
          out.line(`  ${g.verdict.padEnd(9)} ${escapeControl(`${g.module}.${g.name}`)}  (${g.occurrences.length}×, first via ${first.opcode} in ${escapeControl(first.record)} at byte ${first.offset}${first.placedAt === undefined ? "" : `, under key ${escapeControl(JSON.stringify(first.placedAt))}`})`);
        }
        const allowed = report.globals.filter((g) => g.verdict === "allowed");
        if (allowed.length > 0) out.line(`  allowed   ${allowed.map((g) => escapeControl(`${g.module}.${g.name}`)).join(", ")}`);
        if (report.error) out.line(`  error     ${escapeControl(report.error.message)}`);
      }
      const exitCode = auditExitCode(reports);
      out.result({ command: "audit", exitCode, reports: reports.map(({ file, ...r }) => ({ path: file, ...r })) });
      out.text(renderAuditPanel(reports, Date.now() - started, out.theme, out.columns));
      if (exitCode !== 0) throw new ExitRequest(exitCode);
    });
}
