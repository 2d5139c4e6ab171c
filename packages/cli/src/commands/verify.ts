import { stat } from "node:fs/promises";
import { basename, resolve } from "node:path";
import { verifyConversion, type ConversionReport } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { ExitRequest } from "../cli-error.js";
import { formatBytes } from "../format.js";
import type { PhaseSnapshot } from "../progress-state.js";
import { renderPanel, timeRow, timingsJson, type PanelRow } from "../render-panel.js";
import { escapeControl } from "../terminal-text.js";
import type { Theme } from "../theme.js";

/** The closing panel: both files, the tensor counts, time, and what to do next (inspect, or convert again). */
function renderVerifyPanel(report: ConversionReport, info: { sizes: readonly [number, number]; ms: number; phases: readonly PhaseSnapshot[] }, t: Theme, columns: number): string {
  const c = report.counts;
  const verdict = report.ok ? t.success("OK") : t.error("FAILED");
  const rows: PanelRow[] = [
    ["original", `${t.path(escapeControl(report.original))} ${t.dim(`(${report.originalFormat}, ${formatBytes(info.sizes[0])})`)}`],
    ["converted", `${t.path(escapeControl(report.converted))} ${t.dim(`(${report.convertedFormat}, ${formatBytes(info.sizes[1])})`)}`],
    ["detected", escapeControl(report.detected.label)],
    ["result", `${verdict}: ${c.identical} identical, ${c["within-tolerance"]} within cast tolerance, ${c.pruned} pruned, ${c.mismatch} mismatched, ${c.missing} missing, ${c.extra} extra`],
    ["wrote", t.dim("nothing (verify only reads)")],
    ["time", timeRow(info.ms, info.phases, t)],
    ["next", report.ok ? `stmerge inspect ${escapeControl(basename(report.converted))}` : `stmerge convert ${escapeControl(basename(report.original))} --overwrite ${t.dim("(the converted file does not hold the original's tensors)")}`],
  ];
  return renderPanel(report.ok ? `${t.success(t.glyphs.ok)} verified` : `${t.error(t.glyphs.fail)} verification failed`, rows, t, columns);
}

export function registerVerifyCommand(program: Command, ctx: CliContext): void {
  program
    .command("verify")
    .description("check a converted file against its original tensor by tensor (keys, shapes, dtypes, values); never executes pickles")
    .argument("<original>", "the original checkpoint (.ckpt/.pt/.pth/.bin or .safetensors)")
    .argument("<converted>", "the converted file")
    .option("--verbose", "print a line for every tensor")
    .option("--json", "print the report as JSON")
    .addHelpText("after", "\nExit status: 0 when the files match, 1 when they do not.\n\nExamples:\n  $ stmerge verify model.ckpt model.safetensors\n  $ stmerge verify model.ckpt model.safetensors --verbose")
    .action(async (original: string, converted: string, options: { verbose?: boolean }, command: Command) => {
      const out = ctx.output(command);
      out.banner([]);
      const started = Date.now();
      const report = await verifyConversion(resolve(ctx.io.cwd, original), resolve(ctx.io.cwd, converted), {
        signal: ctx.signal,
        onProgress: out.progress.onProgress,
        onTensor: (check) => {
          if (options.verbose || check.status === "mismatch" || check.status === "missing" || check.status === "extra") {
            out.progress.done();
            out.line(`  ${check.status.padEnd(16)} ${escapeControl(check.name)}${check.detail ? `  (${escapeControl(check.detail)})` : ""}`);
          }
        },
      });
      out.progress.done();
      const ms = Date.now() - started;
      const phases = out.progress.finishedPhases();
      const sizes = [(await stat(report.original)).size, (await stat(report.converted)).size] as const;
      const { original: _o, converted: _c, originalFormat, convertedFormat, ...rest } = report;
      out.result({ command: "verify", original: { path: report.original, sizeBytes: sizes[0], format: originalFormat }, converted: { path: report.converted, sizeBytes: sizes[1], format: convertedFormat }, ...rest, timings: timingsJson(ms, phases) });
      out.text(renderVerifyPanel(report, { sizes, ms, phases }, out.theme, out.columns));
      if (!report.ok) throw new ExitRequest(1);
    });
}
