import { resolve } from "node:path";
import { verifyConversion } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { ExitRequest } from "../cli-error.js";
import { escapeControl } from "../terminal-text.js";

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
      out.result({ command: "verify", ...report });
      const c = report.counts;
      out.line(
        `${report.ok ? "OK" : "FAILED"}: ${c.identical} identical, ${c["within-tolerance"]} within cast tolerance, ${c.pruned} pruned, ${c.mismatch} mismatched, ${c.missing} missing, ${c.extra} extra (${report.detected.label}, ${report.originalFormat} → ${report.convertedFormat})`,
      );
      if (!report.ok) throw new ExitRequest(1);
    });
}
