import { stat } from "node:fs/promises";
import { dirname, join, resolve, basename } from "node:path";
import { extractVae } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { formatBytes } from "../format.js";
import { warnLeftoverTemps } from "../leftover-temps.js";
import { renderPanel, timeRow, timingsJson } from "../render-panel.js";
import { escapeControl } from "../terminal-text.js";

export function registerExtractVaeCommand(program: Command, ctx: CliContext): void {
  program
    .command("extract-vae")
    .description("write a checkpoint's VAE (first_stage_model.*) as a standalone VAE file")
    .argument("<model>", "a .safetensors checkpoint")
    .option("-o, --output <file>", "output path (default: <model stem>.vae.safetensors beside the model)")
    .option("--overwrite", "replace an existing output")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  $ stmerge extract-vae model.safetensors\n  $ stmerge extract-vae model.safetensors -o vae/my-vae.safetensors --overwrite")
    .action(async (model: string, options: { output?: string; overwrite?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const path = resolve(ctx.io.cwd, model);
      const output = options.output ? resolve(ctx.io.cwd, options.output) : join(dirname(path), `${basename(path).replace(/\.safetensors$/i, "")}.vae.safetensors`);
      await warnLeftoverTemps(output, out);
      const started = Date.now();
      const r = await extractVae(path, output, { overwrite: Boolean(options.overwrite), onProgress: out.progress.onProgress, signal: ctx.signal });
      out.progress.done();
      const ms = Date.now() - started;
      const phases = out.progress.finishedPhases();
      const sizeBytes = (await stat(r.outputPath)).size;
      out.result({ command: "extract-vae", input: { path }, output: { path: r.outputPath, sizeBytes, tensors: r.tensors }, tensorBytes: r.bytes, timings: timingsJson(ms, phases) });
      const t = out.theme;
      out.text(
        renderPanel(`${t.success(t.glyphs.ok)} extracted VAE`, [
          ["output", t.path(escapeControl(r.outputPath))],
          ["from", t.path(escapeControl(path))],
          ["tensors", `${t.number(String(r.tensors))} ${t.dim("(the checkpoint's VAE keys, prefix removed)")}`],
          ["size", t.number(formatBytes(sizeBytes))],
          ["time", timeRow(ms, phases, t)],
          ["next", `stmerge inspect ${escapeControl(basename(r.outputPath))}`],
        ], t, out.columns),
      );
    });
}
