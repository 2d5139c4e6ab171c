import { join, resolve } from "node:path";
import { createHashingTap, type CacheRecorder, type HashingTap } from "@stmerge/cache";
import { CONVERT_TAP_ALGORITHMS, withConvertCrc32 } from "../convert-output-hashes.js";
import { writeFileAtomic, type Precision } from "@stmerge/core-tensors";
import { BATCH_CONVERT_EXTENSIONS, convertFolder, type BatchFileResult } from "@stmerge/merge-engine";
import type { Command } from "commander";
import { bannerLines } from "../banner.js";
import { batchSummaryJson, errorLogName, errorLogText, renderBatchSummary } from "../batch-summary.js";
import { createBatchView } from "../batch-view.js";
import { cacheNotUpdated, openCliCache, type CacheFlags } from "../cli-cache.js";
import type { CliContext } from "../cli-context.js";
import { CliError, EXIT } from "../cli-error.js";
import { recordConversionInCache } from "../record-conversion-in-cache.js";
import { escapeControl } from "../terminal-text.js";
import { createTheme, resolveUnicode } from "../theme.js";
import { renderConvertPanel } from "./convert.js";

/**
 * Default `--jobs`: two files at a time. Measured on the 2-core machine (packages/cli/bench,
 * README "Batch conversion"): small files are dominated by per-file work on the main thread
 * (pickle parsing, header planning, cache update) that a second lane overlaps with the other
 * file's I/O and hashing workers; large files are bound by the disk, where a second lane
 * neither helps nor hurts much. More lanes only add memory (two tensor buffers per lane).
 */
const DEFAULT_BATCH_JOBS = 2;
/**
 * The batch's cache records are written together, at most this many files or this many ms after
 * the oldest unwritten one, and at the end or on interrupt: one locked, fsynced rewrite of the
 * cache per batch of files instead of two per file (half a small-file batch's time, README).
 */
const CACHE_FLUSH_EVERY = 16;
const CACHE_FLUSH_MS = 2000;
/** More lanes than this is a typo, not a plan: each holds convert's pieces and the output's hashing lanes. */
const MAX_JOBS = 32;

export interface BatchOptions extends CacheFlags {
  readonly outputDir?: string;
  readonly recursive: boolean;
  readonly overwrite: boolean;
  readonly prune: boolean;
  readonly precision: "keep" | Precision;
  readonly verbose: boolean;
  readonly jobs?: string;
}

function parseJobs(value: string | undefined): number {
  if (value === undefined) return DEFAULT_BATCH_JOBS;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > MAX_JOBS) throw new CliError("BAD_FLAG", `--jobs must be a whole number from 1 to ${MAX_JOBS}, got ${JSON.stringify(value)}`, { exitCode: 2 });
  return n;
}

/**
 * `stmerge convert <folder>`: every checkpoint of a folder through the library's convertFolder,
 * one line per file (batch-view), each converted file recorded in the metadata cache like a
 * single conversion (its hashes taken while it was read back, no second read), a summary panel
 * (batch-summary), failures in full in `conversion_errors_<time>.log` in the output folder.
 * Exit 0 only when every file has its output; an interrupt prints the summary of what finished.
 */
export async function runConvertBatch(folder: string, options: BatchOptions, ctx: CliContext, command: Command): Promise<void> {
  const out = ctx.output(command);
  const jobs = parseJobs(options.jobs);
  const cacheFlags: CacheFlags = { ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}), ...(options.cache === false ? { cache: false } : {}) };
  out.banner(await bannerLines(ctx.io, { cache: cacheFlags }, (t) => out.warn(t)));
  const mode = out.quiet ? "none" : out.json ? "json" : ctx.io.stderr.isTTY && ctx.io.env.TERM !== "dumb" ? "tty" : "plain";
  // --json prints file lines even with --quiet: they are the command's result.
  // The view draws on stderr, which has its own colour decision (out.color) as either stream may be piped.
  const theme = createTheme({ color: out.color, unicode: resolveUnicode(ctx.io.env) });
  const view = createBatchView(ctx.io, out.json ? "json" : mode, { theme, ...(ctx.io.clock ? { now: ctx.io.clock.now, schedule: ctx.io.clock.schedule } : {}) });
  const warn = (text: string) => (out.json ? out.warn(text) : view.above(`${out.theme.warning("warning:")} ${escapeControl(text)}\n`, "stderr"));
  const taps = new Map<string, HashingTap>();
  const record = cacheFlags.cache !== false;
  let recorder: CacheRecorder | undefined;
  if (record) {
    try {
      recorder = await openCliCache(ctx.io, cacheFlags, warn).recorder({
        flushEvery: CACHE_FLUSH_EVERY,
        flushIntervalMs: CACHE_FLUSH_MS,
        onWriteError: (error, n) => warn(`${cacheNotUpdated(error)} (${n} record${n === 1 ? "" : "s"} not written; later files are not recorded)`),
      });
    } catch (error) {
      warn(cacheNotUpdated(error as Error));
    }
  }
  const flushCache = () => recorder?.flush().catch((error: unknown) => warn(cacheNotUpdated(error as Error)));
  let total = 0;
  // An interrupt writes what finished at once (a second Ctrl+C may not wait for the summary).
  const onAbort = () => {
    view.done();
    void flushCache();
  };
  ctx.signal.addEventListener("abort", onAbort, { once: true });

  const fileDone = async (result: BatchFileResult): Promise<void> => {
    const tap = taps.get(result.file.input);
    taps.delete(result.file.input);
    if (result.status !== "converted" || !result.result) {
      await tap?.close();
      view.finish(result, total);
      return;
    }
    const converted = result.result;
    const outputHashes = tap ? (record ? withConvertCrc32(await tap.result(), converted) : await tap.result()) : undefined;
    let cached = "off (--no-cache)";
    if (record) {
      cached = recorder ? "output and source recorded" : "not recorded (see warning)";
      try {
        if (recorder) {
          await recordConversionInCache(converted, ctx.io, { ...cacheFlags, ...(outputHashes ? { outputHashes } : {}), warn, recorder });
        }
      } catch (error) {
        cached = "not recorded (see warning)";
        warn(`could not record ${converted.output} in the metadata cache: ${(error as Error).message}`);
      }
    }
    view.finish(result, total);
    if (options.verbose && !out.json) view.above(renderConvertPanel(converted, { ms: result.ms, outputHashes, phases: [], cached }, out.theme, out.columns), "stdout");
  };

  let summary;
  try {
    summary = await convertFolder(folder, {
      ...(options.outputDir ? { outputDir: resolve(ctx.io.cwd, options.outputDir) } : {}),
      recursive: options.recursive,
      overwrite: options.overwrite,
      prune: options.prune,
      precision: options.precision,
      jobs,
      signal: ctx.signal,
      // Hashes for the cache (and --verbose) come from the bytes convert writes (CRC-32 from convert itself).
      ...(record || options.verbose
        ? {
            outputTapFor: (file) => {
              const tap = createHashingTap({ algorithms: record ? CONVERT_TAP_ALGORITHMS : ["sha256"] });
              taps.set(file.input, tap);
              return tap;
            },
          }
        : {}),
      // The cache's SHA-256 of an unchanged input lets convert write the header first (no second hash of the input).
      ...(recorder
        ? {
            inputSha256For: async (file) => {
              const found = await recorder!.lookup(file.input).catch(() => undefined);
              return found?.status === "fresh" ? found.entry?.sha256 : undefined;
            },
          }
        : {}),
      onDiscovered: (found) => {
        total = found.files.length;
        if (total > 0) out.note(`${escapeControl(found.folder)}: ${total} file${total === 1 ? "" : "s"} to convert into ${escapeControl(found.outputDir)}/${found.unsupported.length ? ` (${found.unsupported.length} other file${found.unsupported.length === 1 ? "" : "s"} ignored)` : ""}`);
      },
      onFileStart: (file, index) => view.start(file, index, total),
      onFileProgress: (file, event) => view.progress(file, event),
      onFileDone: fileDone,
    });
  } finally {
    view.done();
    ctx.signal.removeEventListener("abort", onAbort);
    await Promise.all([...taps.values()].map((t) => t.close()));
    await flushCache();
  }

  if (summary.results.length === 0) {
    const others = summary.unsupported.length;
    const why = others === 0 ? "folder is empty" : `no ${BATCH_CONVERT_EXTENSIONS.join(" ")} files among its ${others} file${others === 1 ? "" : "s"}`;
    throw new CliError("CONVERT_NOTHING_TO_CONVERT", `${summary.folder}: ${why}, nothing to convert${options.recursive ? "" : " (--recursive includes sub-folders)"}`, { file: summary.folder });
  }

  let errorLog: string | undefined;
  if (summary.results.some((r) => r.status === "failed")) {
    const at = new Date();
    errorLog = join(summary.outputDir, errorLogName(at));
    try {
      await writeFileAtomic(errorLog, errorLogText(summary, at));
    } catch (error) {
      warn(`could not write the error log ${errorLog}: ${(error as Error).message}`);
      errorLog = undefined;
    }
  }
  if (out.json) ctx.io.stdout.write(`${JSON.stringify(batchSummaryJson(summary, errorLog))}\n`);
  else out.text(renderBatchSummary(summary, { theme: out.theme, columns: out.columns, errorLog }));
  const program = command.parent as (Command & { stmergeExitCode?: number; stmergeInterruptKept?: string }) | null;
  const converted = summary.results.filter((r) => r.status === "converted" || r.status === "skipped").length;
  const inProgress = summary.results.filter((r) => r.status === "interrupted").map((r) => r.file.output);
  if (program) {
    if (converted < summary.results.length) program.stmergeExitCode = EXIT.failure;
    program.stmergeInterruptKept = `${converted} of ${summary.results.length} files converted (summary above)${inProgress.length ? `; ${inProgress.map(escapeControl).join(", ")} not written (partial temp file removed)` : ""}; inputs unchanged`;
  }
}
