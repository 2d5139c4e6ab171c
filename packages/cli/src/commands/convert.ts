import { stat } from "node:fs/promises";
import { basename, extname, resolve } from "node:path";
import { createHashingTap, type FileHashes } from "@stmerge/cache";
import { sniffFile } from "@stmerge/core-tensors";
import { convertCheckpoint, defaultConvertOutput, type ConvertResult } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { bannerLines } from "../banner.js";
import { addCacheOptions, lookupCachedIdentity, type CacheFlags } from "../cli-cache.js";
import { CliError } from "../cli-error.js";
import { recordConversionInCache } from "../record-conversion-in-cache.js";
import { CONVERT_TAP_ALGORITHMS, withConvertCrc32 } from "../convert-output-hashes.js";
import { formatBytes } from "../format.js";
import type { PhaseSnapshot } from "../progress-state.js";
import { renderPanel, timeRow, timingsJson, type PanelRow } from "../render-panel.js";
import { warnLeftoverTemps } from "../leftover-temps.js";
import { escapeControl } from "../terminal-text.js";
import { isRecursive, addRecursiveOption } from "../recursive-option.js";
import { runConvertBatch } from "./convert-batch.js";
import type { Theme } from "../theme.js";

const CHECKPOINT_EXTENSIONS = new Set([".ckpt", ".pt", ".pth", ".bin", ".pkl"]);
const PRECISIONS = ["keep", "fp16", "bf16", "fp32"] as const;

/** The JSON shape of `stmerge convert --json` (see README "JSON documents"). */
function convertSummary(result: ConvertResult, ms: number, extra: { outputHashes?: FileHashes | undefined; phases?: readonly PhaseSnapshot[] } = {}): Record<string, unknown> {
  return {
    command: "convert",
    input: { path: result.input, format: result.sourceFormat, sha256: result.inputSha256, stateDict: result.wrapperPath.join(".") || "(root)", strippedPrefixes: result.strippedPrefixes },
    output: { path: result.output, sizeBytes: result.outputBytes, sha256: extra.outputHashes?.sha256 ?? null, tensors: result.tensorsWritten, precision: result.precision },
    detected: { kind: result.detected.kind, label: result.detected.label, evidence: result.detected.evidence },
    pruned: result.pruned,
    verified: true,
    timings: timingsJson(ms, extra.phases ?? []),
  };
}

/** The single-file summary panel (also printed per file by `convert <folder> --verbose`). */
export function renderConvertPanel(result: ConvertResult, info: { ms: number; outputHashes: FileHashes | undefined; phases: readonly PhaseSnapshot[]; cached: string }, t: Theme, columns: number): string {
  const { ms, outputHashes, phases, cached } = info;
  const rows: PanelRow[] = [
    ["output", t.path(escapeControl(result.output))],
    ["from", `${t.path(escapeControl(result.input))} ${t.dim(`(${result.sourceFormat}, state dict at ${escapeControl(result.wrapperPath.join(".")) || "the root"})`)}`],
    ["detected", result.detected.label],
    ["tensors", `${t.number(String(result.tensorsWritten))} written${result.pruned.length ? `, ${t.number(String(result.pruned.length))} pruned ${t.dim("(EMA, training state; --no-prune keeps)")}` : ""}`],
    ...(result.strippedPrefixes > 0 ? [["prefixes", `removed DataParallel "module." from ${result.strippedPrefixes} keys`] as PanelRow] : []),
    ["precision", result.precision],
    ["size", t.number(formatBytes(result.outputBytes))],
    // Labels of at most 10 characters keep a 64-digit hash on one line of an 80-column panel.
    ...(outputHashes?.sha256 ? [["sha256", t.hash(outputHashes.sha256)] as PanelRow] : []),
    ["src sha256", t.hash(result.inputSha256)],
    ["verified", t.success("every tensor checked as written; header read back")],
    ["time", timeRow(ms, phases, t)],
    ["cache", cached],
    ["next", `stmerge inspect ${escapeControl(basename(result.output))}`],
  ];
  return renderPanel(`${t.success(t.glyphs.ok)} converted`, rows, t, columns);
}

export function registerConvertCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command("convert")
    .description("convert a .ckpt/.pt/.pth/.bin checkpoint to safetensors without executing any of it; the output is read back and checked")
    .argument("<input>", "a PyTorch checkpoint (zip or legacy format) or a pickle file; a folder converts every .ckpt .pt .pth .bin in it")
    .option("-o, --output <file>", "output path (default: <input stem>.safetensors beside the input)")
    .option("--batch", "convert a folder (implied when <input> is a folder)")
    .option("--output-dir <dir>", "folder conversion: where the outputs go, sub-folders mirrored (default: <folder>_converted)")
    .option("--jobs <n>", "folder conversion: files converted at the same time (default 2)")
    .option("--verbose", "folder conversion: print the single-file summary of every file")
    .option("--overwrite", "replace an existing output")
    .option("--no-prune", "keep EMA copies and training leftovers of SD checkpoints")
    .option("--precision <p>", "keep|fp16|bf16|fp32: cast float tensors", "keep")
    .option("--force", "accept an input whose extension is not .ckpt/.pt/.pth/.bin")
    .option("--allow-amplification", "convert a file whose tensors add up to over 4x its size (views sharing storages); only for a file you trust")
    .option("--json", "print the result as JSON")
    .addHelpText("after", "\nExamples:\n  $ stmerge convert model.ckpt\n  $ stmerge convert model.ckpt -o model-fp16.safetensors --precision fp16\n  $ stmerge convert upscaler.pth --no-prune --json\n  $ stmerge convert models/ --recursive --output-dir models_st")
  addRecursiveOption(command, "folder conversion: include sub-folders");
  addCacheOptions(command).action(
    async (input: string, options: { output?: string; overwrite?: boolean; prune: boolean; precision: string; force?: boolean; allowAmplification?: boolean; batch?: boolean; outputDir?: string; jobs?: string; verbose?: boolean; recursive?: boolean; recurse?: boolean } & CacheFlags, command: Command) => {
      const out = ctx.output(command);
      if (!(PRECISIONS as readonly string[]).includes(options.precision)) {
        throw new CliError("BAD_FLAG", `--precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(options.precision)}`, { exitCode: 2 });
      }
      const path = resolve(ctx.io.cwd, input);
      const isFolder = await stat(path).then((s) => s.isDirectory(), () => false);
      if (isFolder || options.batch) {
        if (!isFolder) throw new CliError("BAD_FLAG", `${path}: --batch needs a folder`, { exitCode: 2, file: path });
        if (options.output !== undefined) throw new CliError("BAD_FLAG", `${path} is a folder: name where the outputs go with --output-dir, not -o`, { exitCode: 2, file: path });
        await runConvertBatch(path, {
          ...(options.outputDir === undefined ? {} : { outputDir: options.outputDir }),
          ...(options.jobs === undefined ? {} : { jobs: options.jobs }),
          recursive: isRecursive(options),
          overwrite: Boolean(options.overwrite),
          prune: options.prune,
          precision: options.precision as (typeof PRECISIONS)[number],
          verbose: Boolean(options.verbose),
          ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}),
          ...(options.cache === false ? { cache: false } : {}),
        }, ctx, command);
        return;
      }
      for (const flag of ["outputDir", "jobs"] as const) {
        if (options[flag] !== undefined) throw new CliError("BAD_FLAG", `--${flag === "outputDir" ? "output-dir" : flag} is for converting a folder; ${path} is a file (name its output with -o)`, { exitCode: 2, file: path });
      }
      const ext = extname(path).toLowerCase();
      // What the file is decides before its name does: a missing file or a folder is one typed line,
      // a safetensors file has nothing to convert, a saved web page is not a checkpoint.
      const sniffed = await sniffFile(path);
      if (sniffed.kind === "safetensors" && !options.force) {
        throw new CliError("CONVERT_ALREADY_SAFETENSORS", `${path}: already a safetensors file, nothing to convert (\`stmerge inspect\` shows what it holds)`, { file: path });
      }
      if (sniffed.kind === "html") throw new CliError("CONVERT_NOT_A_CHECKPOINT", `${path}: not a PyTorch checkpoint (looks like ${sniffed.looksLike})`, { file: path });
      if (!CHECKPOINT_EXTENSIONS.has(ext) && !options.force) {
        throw new CliError("CONVERT_EXTENSION", `${path}: extension ${JSON.stringify(ext || "(none)")} is not a checkpoint extension (.ckpt .pt .pth .bin); pass --force to convert it anyway`, { exitCode: 2, file: path });
      }
      const cacheFlags: CacheFlags = { ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}), ...(options.cache === false ? { cache: false } : {}) };
      out.banner(await bannerLines(ctx.io, { cache: cacheFlags }, (t) => out.warn(t)));
      await warnLeftoverTemps(options.output === undefined ? defaultConvertOutput(path) : resolve(ctx.io.cwd, options.output), out);
      const started = Date.now();
      // The output's hashes come from bytes convert already handles (no extra pass for the cache):
      // as they are written, those written before the input's SHA-256 was known read back once it is.
      const hashing = createHashingTap({ algorithms: cacheFlags.cache === false ? ["sha256"] : CONVERT_TAP_ALGORITHMS });
      const knownInput = await lookupCachedIdentity(path, ctx.io, cacheFlags);
      const result = await convertCheckpoint(path, {
        outputTap: hashing,
        ...(knownInput?.sha256 ? { inputSha256: knownInput.sha256 } : {}),
        ...(options.output === undefined ? {} : { output: resolve(ctx.io.cwd, options.output) }),
        overwrite: Boolean(options.overwrite),
        prune: options.prune,
        precision: options.precision as (typeof PRECISIONS)[number],
        ...(options.allowAmplification ? { allowAmplification: true } : {}),
        onProgress: out.progress.onProgress,
        signal: ctx.signal,
      }).catch(async (error: unknown) => {
        await hashing.close();
        throw error;
      });
      out.progress.done();
      const outputHashes = withConvertCrc32(await hashing.result(), result);
      // A converted file is the same model: the cache entry carries the source's CivitAI data. The
      // source's SHA-256 and the output's hashes were computed while converting.
      let cached = "off (--no-cache)";
      if (cacheFlags.cache !== false) {
        cached = "output and source recorded";
        try {
          await recordConversionInCache(result, ctx.io, { ...cacheFlags, ...(outputHashes ? { outputHashes } : {}), warn: (t) => out.warn(t) });
        } catch (error) {
          cached = "not recorded (see warning)";
          out.warn(`could not record ${escapeControl(result.output)} in the metadata cache: ${escapeControl((error as Error).message)}`);
        }
      }
      const ms = Date.now() - started;
      const phases = out.progress.finishedPhases();
      out.result(convertSummary(result, ms, { outputHashes, phases }));
      out.text(renderConvertPanel(result, { ms, outputHashes, phases, cached }, out.theme, out.columns));
    },
  );
}
