import { basename, dirname, join, resolve } from "node:path";
import { openSafetensors, type Precision } from "@stmerge/core-tensors";
import { executeLoraBake, loadLora, planLoraBake, type LoraBakeInput } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { formatBytes, formatDuration } from "../format.js";
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
      if (options.precision !== undefined && !(PRECISIONS as readonly string[]).includes(options.precision)) {
        throw new CliError("BAD_FLAG", `--precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(options.precision)}`, { exitCode: 2 });
      }
      const checkpointPath = resolve(ctx.io.cwd, checkpoint);
      const weighted = loraArgs.map((a) => parseWeightedPath(a, "LoRA"));
      const outputPath = options.output
        ? resolve(ctx.io.cwd, options.output)
        : join(dirname(checkpointPath), `${stem(checkpointPath)}+${weighted.map((w) => stem(w.path)).join("+")}.safetensors`);
      const started = Date.now();
      const inputs: LoraBakeInput[] = [];
      for (const w of weighted) inputs.push({ lora: await loadLora(resolve(ctx.io.cwd, w.path)), strength: w.weight });
      const source = await openSafetensors(checkpointPath);
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
        });
        out.progress.done();
        const ms = Date.now() - started;
        out.result({ ...r, ms });
        out.line(escapeControl(r.outputPath));
        for (const l of r.loras) {
          const formats = Object.entries(l.formats).map(([f, n]) => `${n} ${f}`).join(", ");
          out.line(`  lora        ${escapeControl(l.name)} × ${l.strength} (${l.modules} modules: ${formats})`);
        }
        out.line(`  model       ${escapeControl(basename(checkpointPath))} (${r.architecture})`);
        out.line(`  changed     ${r.tensorsChanged} of ${r.tensorsWritten} tensors (${r.modulesPlaced} modules placed${r.unplaced.length ? `, ${r.unplaced.length} not placed` : ""})`);
        const blocks = Object.entries(r.changedByBlock).map(([b, n]) => `${b} ${n}`).join(", ");
        if (blocks) out.line(`  per block   ${blocks}`);
        out.line(`  size        ${formatBytes(r.bytesWritten)} in ${formatDuration(ms)}`);
      } finally {
        await source.close();
      }
    });
}

/** `stmerge lora …`: bake LoRAs into a checkpoint (extract and merge live beside it). */
export function registerLoraCommand(program: Command, ctx: CliContext): void {
  const lora = program.command("lora").description("work with LoRA / LyCORIS files: bake into a checkpoint");
  registerBake(lora, ctx);
}
