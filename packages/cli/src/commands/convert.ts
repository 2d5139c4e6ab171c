import { extname, resolve } from "node:path";
import { convertCheckpoint, type ConvertResult } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { bannerLines } from "../banner.js";
import { addCacheOptions, recordOutputInCache, type CacheFlags } from "../cli-cache.js";
import { CliError } from "../cli-error.js";
import { formatBytes, formatDuration } from "../format.js";
import { escapeControl } from "../terminal-text.js";

const CHECKPOINT_EXTENSIONS = new Set([".ckpt", ".pt", ".pth", ".bin", ".pkl"]);
const PRECISIONS = ["keep", "fp16", "bf16", "fp32"] as const;

/** The JSON shape of `stmerge convert --json`. */
export function convertSummary(result: ConvertResult, ms: number): Record<string, unknown> {
  return {
    input: result.input,
    output: result.output,
    sourceFormat: result.sourceFormat,
    detected: { kind: result.detected.kind, label: result.detected.label, evidence: result.detected.evidence },
    stateDict: result.wrapperPath.join(".") || "(root)",
    strippedPrefixes: result.strippedPrefixes,
    tensorsWritten: result.tensorsWritten,
    pruned: result.pruned,
    precision: result.precision,
    inputSha256: result.inputSha256,
    outputBytes: result.outputBytes,
    verified: true,
    ms,
  };
}

export function registerConvertCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command("convert")
    .description("convert a .ckpt/.pt/.pth/.bin checkpoint to safetensors without executing any of it; the output is read back and checked")
    .argument("<input>", "a PyTorch checkpoint (zip or legacy format) or a pickle file")
    .option("-o, --output <file>", "output path (default: <input stem>.safetensors beside the input)")
    .option("--overwrite", "replace an existing output")
    .option("--no-prune", "keep EMA copies and training leftovers of SD checkpoints")
    .option("--precision <p>", "keep|fp16|bf16|fp32: cast float tensors", "keep")
    .option("--force", "accept an input whose extension is not .ckpt/.pt/.pth/.bin")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  $ stmerge convert model.ckpt\n  $ stmerge convert model.ckpt -o model-fp16.safetensors --precision fp16\n  $ stmerge convert upscaler.pth --no-prune --json")
  addCacheOptions(command).action(
    async (input: string, options: { output?: string; overwrite?: boolean; prune: boolean; precision: string; force?: boolean } & CacheFlags, command: Command) => {
      const out = ctx.output(command);
      if (!(PRECISIONS as readonly string[]).includes(options.precision)) {
        throw new CliError("BAD_FLAG", `--precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(options.precision)}`, { exitCode: 2 });
      }
      const path = resolve(ctx.io.cwd, input);
      const ext = extname(path).toLowerCase();
      if (!CHECKPOINT_EXTENSIONS.has(ext) && !options.force) {
        throw new CliError("CONVERT_EXTENSION", `${path}: extension ${JSON.stringify(ext || "(none)")} is not a checkpoint extension (.ckpt .pt .pth .bin); pass --force to convert it anyway`, { exitCode: 2, file: path });
      }
      const cacheFlags: CacheFlags = { ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}), ...(options.cache === false ? { cache: false } : {}) };
      out.banner(await bannerLines(ctx.io, { cache: cacheFlags }, (t) => out.warn(t)));
      const started = Date.now();
      const result = await convertCheckpoint(path, {
        ...(options.output === undefined ? {} : { output: resolve(ctx.io.cwd, options.output) }),
        overwrite: Boolean(options.overwrite),
        prune: options.prune,
        precision: options.precision as (typeof PRECISIONS)[number],
        onProgress: out.progress.onProgress,
        signal: ctx.signal,
      });
      out.progress.done();
      const ms = Date.now() - started;
      out.result(convertSummary(result, ms));
      out.line(escapeControl(result.output));
      out.line(`  from        ${escapeControl(result.input)} (${result.sourceFormat}, state dict at ${escapeControl(result.wrapperPath.join(".")) || "the root"})`);
      out.line(`  detected    ${result.detected.label}`);
      out.line(`  tensors     ${result.tensorsWritten} written${result.pruned.length ? `, ${result.pruned.length} pruned (EMA copies and training leftovers; --no-prune keeps them)` : ""}`);
      if (result.strippedPrefixes > 0) out.line(`  prefixes    removed DataParallel "module." from ${result.strippedPrefixes} keys`);
      out.line(`  precision   ${result.precision}`);
      out.line(`  size        ${formatBytes(result.outputBytes)}`);
      out.line(`  source sha256 ${result.inputSha256}`);
      out.line(`  verified    every tensor read back and matched (${formatDuration(ms)})`);
      // A converted file is the same model: the cache entry carries the source's CivitAI data.
      await recordOutputInCache(result.output, ctx.io, { ...cacheFlags, source: path, extra: { architecture: result.detected.label }, warn: (t) => out.warn(t) }).catch((error: Error) => {
        out.warn(`could not record ${result.output} in the metadata cache: ${error.message}`);
      });
    },
  );
}
