import { basename, dirname, join, resolve } from "node:path";
import { createCpuKernelBackend, openSafetensors, type Precision } from "@stmerge/core-tensors";
import { executeLoraBake, extractLora, loadLora, mergeLoras, planLoraBake, type LoraBakeInput } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { formatBytes } from "../format.js";
import { renderPanel, timeRow, type PanelRow } from "../render-panel.js";
import { escapeControl } from "../terminal-text.js";

const PRECISIONS = ["fp16", "bf16", "fp32"] as const;

/** `path[:number]` → path and number; a colon not followed by a number stays in the path (C:\…). */
export function parseWeightedPath(arg: string, what: string, fallback = 1): { path: string; weight: number } {
  const m = /^(.+):([-+]?(?:\d+\.?\d*|\.\d+)(?:e[-+]?\d+)?)$/i.exec(arg);
  if (!m) return { path: arg, weight: fallback };
  const weight = Number(m[2]);
  if (!Number.isFinite(weight)) throw new CliError("BAD_ARGUMENT", `${what} ${JSON.stringify(arg)}: ${m[2]} is not a finite number`, { exitCode: 2 });
  return { path: m[1]!, weight };
}

const stem = (path: string) => basename(path).replace(/\.safetensors$/i, "");

interface BakeFlags {
  output?: string;
  overwrite?: boolean;
  precision?: string;
  allowUnmatched?: boolean;
}

function registerBake(lora: Command, ctx: CliContext): void {
  lora
    .command("bake")
    .description("add LoRAs into a checkpoint: W' = W + Σ strength·scale·ΔW in F32 per tensor, streamed")
    .argument("<checkpoint>", "a .safetensors checkpoint (SD1.x, SD2.x, SDXL, Flux)")
    .argument("<lora...>", "LoRA/LyCORIS files, each optionally with :strength (default 1), e.g. detail.safetensors:0.6")
    .option("-o, --output <file>", "output path (default: <checkpoint stem>+<lora stems>.safetensors beside the checkpoint)")
    .option("--overwrite", "replace an existing output")
    .option("--precision <p>", "output float precision: fp16|bf16|fp32 (default: each tensor keeps its dtype)")
    .option("--allow-unmatched", "bake what can be placed even when some LoRA modules match no checkpoint tensor")
    .option("--json", "print the result as JSON")
    .addHelpText(
      "after",
      "\nFormats (per module, from key suffixes): kohya LoRA/LoCon (incl. 3×3 conv and Tucker lora_mid), LyCORIS LoHa and LoKr,\ndiffusers/PEFT lora_A/lora_B and .lora.down/up, full diff. Module names are matched against the checkpoint's own keys.\n\nExamples:\n  $ stmerge lora bake model.safetensors style.safetensors:0.8\n  $ stmerge lora bake sdxl.safetensors a.safetensors b.safetensors:-0.5 -o baked.safetensors --precision fp16",
    )
    .action(async (checkpoint: string, loraArgs: string[], options: BakeFlags, command: Command) => {
      const out = ctx.output(command);
      checkPrecision(options.precision);
      const checkpointPath = resolve(ctx.io.cwd, checkpoint);
      const weighted = loraArgs.map((a) => parseWeightedPath(a, "LoRA"));
      const outputPath = options.output
        ? resolve(ctx.io.cwd, options.output)
        : join(dirname(checkpointPath), `${stem(checkpointPath)}+${weighted.map((w) => stem(w.path)).join("+")}.safetensors`);
      const started = Date.now();
      const inputs: LoraBakeInput[] = [];
      for (const w of weighted) inputs.push({ lora: await loadLora(resolve(ctx.io.cwd, w.path)), strength: w.weight });
      const source = await openSafetensors(checkpointPath);
      const kernels = createCpuKernelBackend();
      try {
        const plan = planLoraBake(source, inputs);
        for (const u of plan.unplaced) out.warn(`${escapeControl(u.lora)}: module ${escapeControl(u.module)} not placed: ${escapeControl(u.reason)}`);
        for (const { lora } of inputs) {
          const alphaZero = lora.modules.filter((m) => m.parts.alpha !== undefined && lora.tensors.get(m.parts.alpha)?.values[0] === 0).length;
          if (alphaZero > 0) out.warn(`${escapeControl(lora.name)}: ${alphaZero} module(s) have alpha 0 and change nothing (kohya merge_lora and ComfyUI apply alpha 0 as scale 0)`);
        }
        const r = await executeLoraBake(plan, source, {
          outputPath,
          overwrite: Boolean(options.overwrite),
          precision: options.precision as Precision | undefined,
          allowUnmatched: Boolean(options.allowUnmatched),
          onProgress: out.progress.onProgress,
          signal: ctx.signal,
          metadata: { stmerge_version: ctx.version },
          kernels,
        });
        out.progress.done();
        const ms = Date.now() - started;
        out.result({ ...r, ms });
        const t = out.theme;
        const blocks = Object.entries(r.changedByBlock).map(([b, n]) => `${b} ${n}`).join(", ");
        const rows: PanelRow[] = [
          ["output", t.path(escapeControl(r.outputPath))],
          ["checkpoint", `${t.path(escapeControl(basename(checkpointPath)))} ${t.dim(`(${r.architecture})`)}`],
          ...r.loras.map((l, i): PanelRow => [i === 0 ? "lora" : "", `${t.path(escapeControl(l.name))} × ${t.number(String(l.strength))} ${t.dim(`(${l.modules} modules: ${Object.entries(l.formats).map(([f, n]) => `${n} ${f}`).join(", ")})`)}`]),
          ["changed", `${r.tensorsChanged} of ${r.tensorsWritten} tensors (${r.modulesPlaced} modules placed${r.unplaced.length ? `, ${t.warning(`${r.unplaced.length} not placed`)}` : ""})`],
          ...(blocks ? [["per block", blocks] as PanelRow] : []),
          ["size", t.number(formatBytes(r.bytesWritten))],
          ["time", timeRow(ms, out.progress.finishedPhases(), t)],
          ["compute", kernels.description],
          ["next", `stmerge inspect ${escapeControl(basename(r.outputPath))}`],
        ];
        out.text(renderPanel(`${t.success(t.glyphs.ok)} baked`, rows, t, out.columns));
      } finally {
        await Promise.all([source.close(), kernels.close()]);
      }
    });
}

function parseRank(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(Number.isSafeInteger(n) && n > 0 && n <= 4096)) throw new CliError("BAD_FLAG", `${flag} must be an integer in 1..4096, got ${JSON.stringify(value)}`, { exitCode: 2 });
  return n;
}

function checkPrecision(value: string | undefined): Precision | undefined {
  if (value !== undefined && !(PRECISIONS as readonly string[]).includes(value)) {
    throw new CliError("BAD_FLAG", `--precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(value)}`, { exitCode: 2 });
  }
  return value as Precision | undefined;
}

interface ExtractFlags {
  rank: string;
  convRank?: string;
  output?: string;
  overwrite?: boolean;
  precision?: string;
}

function registerExtract(lora: Command, ctx: CliContext): void {
  lora
    .command("extract")
    .description("extract a LoRA from a fine-tuned model and its base: ΔW per module, truncated SVD, alpha = rank")
    .argument("<tuned>", "the fine-tuned .safetensors checkpoint")
    .argument("<base>", "the base .safetensors checkpoint it was trained from")
    .requiredOption("--rank <n>", "rank of linear and 1×1 modules")
    .option("--conv-rank <n>", "rank of 3×3 convolutions (LoCon); without it they are left out, as kohya does")
    .option("-o, --output <file>", "output path (default: <tuned stem>-lora-r<rank>.safetensors beside the tuned model)")
    .option("--precision <p>", "precision of the LoRA: fp16|bf16|fp32 (default fp16)")
    .option("--overwrite", "replace an existing output")
    .option("--json", "print the result (with the relative error of every module) as JSON")
    .addHelpText("after", "\nExamples:\n  $ stmerge lora extract tuned.safetensors base.safetensors --rank 64\n  $ stmerge lora extract tuned.safetensors base.safetensors --rank 32 --conv-rank 16 -o my-locon.safetensors")
    .action(async (tuned: string, base: string, options: ExtractFlags, command: Command) => {
      const out = ctx.output(command);
      const rank = parseRank(options.rank, "--rank")!;
      const convRank = parseRank(options.convRank, "--conv-rank");
      const precision = checkPrecision(options.precision);
      const tunedPath = resolve(ctx.io.cwd, tuned);
      const outputPath = options.output ? resolve(ctx.io.cwd, options.output) : join(dirname(tunedPath), `${stem(tunedPath)}-lora-r${rank}.safetensors`);
      const started = Date.now();
      const kernels = createCpuKernelBackend();
      const r = await extractLora(tunedPath, resolve(ctx.io.cwd, base), {
        outputPath,
        rank,
        convRank,
        ...(precision ? { precision } : {}),
        overwrite: Boolean(options.overwrite),
        onProgress: out.progress.onProgress,
        signal: ctx.signal,
        metadata: { stmerge_version: ctx.version },
        kernels,
      }).finally(() => kernels.close());
      out.progress.done();
      const ms = Date.now() - started;
      out.result({ ...r, ms });
      const errors = r.modules.map((m) => m.relativeError);
      const mean = errors.reduce((s, e) => s + e, 0) / Math.max(errors.length, 1);
      const worst = r.modules.reduce((w, m) => (m.relativeError > w.relativeError ? m : w), r.modules[0]!);
      const t = out.theme;
      out.text(
        renderPanel(`${t.success(t.glyphs.ok)} extracted LoRA`, [
          ["output", t.path(escapeControl(r.outputPath))],
          ["from", `${t.path(escapeControl(basename(tunedPath)))} ${t.unicode ? "−" : "-"} ${t.path(escapeControl(basename(resolve(ctx.io.cwd, base))))} ${t.dim(`(rank ${rank}${convRank ? `, conv rank ${convRank}` : ""})`)}`],
          ["modules", `${r.modules.length} extracted (${r.architecture}), ${r.unchanged} unchanged${r.convSkipped ? `, ${r.convSkipped} 3×3 convs left out (--conv-rank)` : ""}`],
          ["rel. error", `mean ${(mean * 100).toFixed(2)}%, worst ${(worst.relativeError * 100).toFixed(2)}% ${t.dim(`(${escapeControl(worst.name)})`)}`],
          ["time", timeRow(ms, out.progress.finishedPhases(), t)],
          ["next", `stmerge inspect ${escapeControl(basename(r.outputPath))}`],
        ], t, out.columns),
      );
    });
}

interface MergeLoraFlags {
  rank: string;
  output?: string;
  overwrite?: boolean;
  precision?: string;
}

function registerMerge(lora: Command, ctx: CliContext): void {
  lora
    .command("merge")
    .description("merge LoRAs into one: exact concatenation when the ranks fit, else SVD re-compression")
    .argument("<lora...>", "LoRA files, each optionally with :weight (default 1); the weight scales ΔW linearly")
    .requiredOption("--rank <n>", "largest rank of a merged module")
    .option("-o, --output <file>", "output path (default: merged-lora.safetensors in the working folder)")
    .option("--precision <p>", "precision of the merged LoRA: fp16|bf16|fp32 (default fp32, which keeps folded scales exact)")
    .option("--overwrite", "replace an existing output")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  $ stmerge lora merge a.safetensors:0.7 b.safetensors:0.3 --rank 64 -o ab.safetensors")
    .action(async (loraArgs: string[], options: MergeLoraFlags, command: Command) => {
      const out = ctx.output(command);
      const rank = parseRank(options.rank, "--rank")!;
      const precision = checkPrecision(options.precision);
      const outputPath = resolve(ctx.io.cwd, options.output ?? "merged-lora.safetensors");
      const started = Date.now();
      const inputs = [];
      for (const a of loraArgs.map((x) => parseWeightedPath(x, "LoRA"))) inputs.push({ lora: await loadLora(resolve(ctx.io.cwd, a.path)), weight: a.weight });
      const r = await mergeLoras(inputs, { outputPath, rank, ...(precision ? { precision } : {}), overwrite: Boolean(options.overwrite), onProgress: out.progress.onProgress, metadata: { stmerge_version: ctx.version } });
      out.progress.done();
      out.result(r);
      const svd = r.modules.filter((m) => m.method === "svd");
      const worst = svd.reduce((w, m) => Math.max(w, m.relativeError), 0);
      const t = out.theme;
      out.text(
        renderPanel(`${t.success(t.glyphs.ok)} merged LoRAs`, [
          ["output", t.path(escapeControl(r.outputPath))],
          ["inputs", inputs.map((i) => `${t.path(escapeControl(i.lora.name))} × ${i.weight}`).join(", ")],
          ["modules", `${r.modules.length}: ${r.modules.length - svd.length} concatenated exactly, ${svd.length} re-compressed by SVD${svd.length ? ` (worst relative error ${(worst * 100).toFixed(2)}%)` : ""}`],
          ["time", timeRow(Date.now() - started, out.progress.finishedPhases(), t)],
          ["next", `stmerge inspect ${escapeControl(basename(r.outputPath))}`],
        ], t, out.columns),
      );
    });
}

/** `stmerge lora …`: bake LoRAs into a checkpoint, extract one from two checkpoints, merge LoRAs. */
export function registerLoraCommand(program: Command, ctx: CliContext): void {
  const lora = program.command("lora").description("work with LoRA / LyCORIS files: bake into a checkpoint, extract, merge");
  registerBake(lora, ctx);
  registerExtract(lora, ctx);
  registerMerge(lora, ctx);
}
