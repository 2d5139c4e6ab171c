import { resolve } from "node:path";
import { auditCheckpoint, type AuditReport } from "@stmerge/safe-pickle";
import { sniffFile } from "@stmerge/core-tensors";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { ExitRequest } from "../cli-error.js";
import { escapeControl } from "../terminal-text.js";

const EXIT_BY_STATUS = { clean: 0, unsafe: 1, unreadable: 2 } as const;

/** Exit 1 when any file is unsafe, else 2 when any is unreadable, else 0. */
export function auditExitCode(reports: readonly AuditReport[]): number {
  if (reports.some((r) => r.status === "unsafe")) return EXIT_BY_STATUS.unsafe;
  if (reports.some((r) => r.status === "unreadable")) return EXIT_BY_STATUS.unreadable;
  return EXIT_BY_STATUS.clean;
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
      if (exitCode !== 0) throw new ExitRequest(exitCode);
    });
}
