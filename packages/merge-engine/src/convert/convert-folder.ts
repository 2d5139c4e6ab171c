import { mkdir, readdir, rm, stat, unlink, writeFile } from "node:fs/promises";
import { basename, dirname, extname, join, relative, resolve, sep } from "node:path";
import { fileSystemError, openSafetensors, type OutputByteTap, type Precision, type ProgressEvent } from "@stmerge/core-tensors";
import { convertCheckpoint, type ConvertResult } from "./convert-checkpoint.js";
import { ConvertError } from "./convert-error.js";
import type { FileFormatKind } from "./detect-file-format.js";

/** Extensions a folder conversion picks up; every other file is listed as skipped. */
export const BATCH_CONVERT_EXTENSIONS: readonly string[] = [".ckpt", ".pt", ".pth", ".bin"];

/**
 * Errors after which every later file would fail the same way (the output's disk or file
 * system), so the batch stops instead of trying each remaining file.
 */
const BATCH_STOPPING_CODES = new Set(["DISK_FULL", "READ_ONLY_FILE_SYSTEM"]);

/** One file a folder conversion will convert: where it is and where its output goes. */
export interface BatchConvertFile {
  readonly input: string;
  /** Path below the input folder (`/`-separated on every platform), as shown to users. */
  readonly relative: string;
  /** Mirrors the input's sub-folder below the output folder. */
  readonly output: string;
  readonly sizeBytes: number;
}

export interface DiscoveredFiles {
  readonly folder: string;
  readonly outputDir: string;
  /** Sorted by relative path. */
  readonly files: readonly BatchConvertFile[];
  /** Relative paths of files that are not `.ckpt .pt .pth .bin` (and safetensors files), in order. */
  readonly unsupported: readonly string[];
}

export type BatchFileStatus = "converted" | "skipped" | "failed" | "interrupted" | "not-attempted";

export interface BatchFileResult {
  readonly file: BatchConvertFile;
  /** 1-based position in the batch. */
  readonly index: number;
  readonly status: BatchFileStatus;
  /** What the model is (known once it was read: converted or already-converted files). */
  readonly format: FileFormatKind | undefined;
  readonly sizeBefore: number;
  /** Output size (converted or already-converted files), else 0. */
  readonly sizeAfter: number;
  readonly ms: number;
  /** Why a file was skipped: its output exists and names this source. */
  readonly skipReason?: string;
  readonly error?: { readonly code: string; readonly message: string; readonly detail: string };
  /** The single-file result of a converted file. */
  readonly result?: ConvertResult;
}

export interface BatchConvertSummary {
  readonly folder: string;
  readonly outputDir: string;
  readonly results: readonly BatchFileResult[];
  readonly unsupported: readonly string[];
  /** Set when the batch stopped early: a disk-wide error or an abort. */
  readonly stopped?: { readonly reason: "disk" | "aborted"; readonly message: string };
  readonly ms: number;
  readonly jobs: number;
}

export interface ConvertFolderOptions {
  /** Default `<folder>_converted` beside the folder. */
  readonly outputDir?: string;
  readonly recursive?: boolean;
  readonly overwrite?: boolean;
  readonly prune?: boolean;
  readonly precision?: "keep" | Precision;
  /** Files converted at the same time (default 1). */
  readonly jobs?: number;
  /** Stops after abandoning the files in progress (their temp outputs removed); the rest are not attempted. */
  readonly signal?: AbortSignal;
  /** A tap per file for its output's bytes (the CLI hashes outputs this way for the cache). */
  readonly outputTapFor?: (file: BatchConvertFile) => OutputByteTap | undefined;
  /** A file's SHA-256 when already known (the CLI asks its cache): convert's header-first path (`ConvertOptions.inputSha256`). */
  readonly inputSha256For?: (file: BatchConvertFile) => Promise<string | undefined>;
  /** The files found, before any is converted (the output folder is not created for none). */
  readonly onDiscovered?: (found: DiscoveredFiles) => void;
  readonly onFileStart?: (file: BatchConvertFile, index: number, total: number) => void;
  readonly onFileProgress?: (file: BatchConvertFile, event: ProgressEvent) => void;
  /** Awaited before the file's lane takes the next file (the CLI records outputs in the cache here). */
  readonly onFileDone?: (result: BatchFileResult) => void | Promise<void>;
}

/** `models` → `models_converted` beside it. */
export function defaultBatchOutputDir(folder: string): string {
  const absolute = resolve(folder);
  return `${absolute}_converted`;
}

/** `sub/model.ckpt` below `folder` → `<outputDir>/sub/model.safetensors`. */
function mirroredOutput(outputDir: string, relativePath: string): string {
  const ext = extname(relativePath);
  return join(outputDir, dirname(relativePath), `${basename(relativePath, ext)}.safetensors`);
}

/**
 * Finds the files a folder conversion converts: `.ckpt .pt .pth .bin` directly in `folder`, or
 * in every sub-folder with `recursive`. Never descends into the output folder (it may sit inside
 * the input), does not follow links to folders (no loops), and ignores hidden files (temp files).
 */
export async function discoverConvertibleFiles(folder: string, options: { recursive?: boolean; outputDir?: string } = {}): Promise<DiscoveredFiles> {
  const root = resolve(folder);
  const outputDir = resolve(options.outputDir ?? defaultBatchOutputDir(root));
  const info = await stat(root).catch(async (error: unknown) => {
    throw await fileSystemError(error, root);
  });
  if (!info.isDirectory()) throw new ConvertError("BATCH_NOT_A_FOLDER", `${root}: not a folder (convert a single file without --batch)`, { file: root });
  const files: BatchConvertFile[] = [];
  const unsupported: string[] = [];
  const pending = [root];
  while (pending.length > 0) {
    const dir = pending.pop()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(async (error: unknown) => {
      throw await fileSystemError(error, dir);
    });
    for (const entry of entries) {
      if (entry.name.startsWith(".")) continue;
      const path = join(dir, entry.name);
      const rel = relative(root, path).split(sep).join("/");
      if (entry.isDirectory()) {
        if (options.recursive && path !== outputDir) pending.push(path);
        continue;
      }
      // A link is taken when it points at a file; links to folders are not followed.
      const target = entry.isSymbolicLink() ? await stat(path).catch(() => undefined) : undefined;
      if (!entry.isFile() && !target?.isFile()) continue;
      if (!BATCH_CONVERT_EXTENSIONS.includes(extname(entry.name).toLowerCase())) {
        unsupported.push(rel);
        continue;
      }
      const sizeBytes = target?.size ?? (await stat(path)).size;
      files.push({ input: path, relative: rel, output: mirroredOutput(outputDir, rel), sizeBytes });
    }
  }
  const byRelative = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  files.sort((a, b) => byRelative(a.relative, b.relative));
  unsupported.sort(byRelative);
  return { folder: root, outputDir, files, unsupported };
}

/**
 * Whether an existing output is this source's conversion, checked cheaply (no hashing): it is a
 * complete safetensors file (header parses, data fits the file), its stmerge provenance names
 * the source's file name and a SHA-256, it was written with the requested precision, and it is
 * newer than the source (a source replaced or edited since has a later mtime). Hashing the source
 * to compare `stmerge.source_sha256` would cost a full read of every file on each resume.
 * Returns why it does not verify, or the output's detected format and size.
 */
export async function checkExistingConversion(
  file: BatchConvertFile,
  precision: "keep" | Precision,
): Promise<{ ok: true; format: FileFormatKind | undefined; sizeBytes: number } | { ok: false; reason: string }> {
  let out;
  try {
    out = await openSafetensors(file.output);
  } catch (error) {
    return { ok: false, reason: `not a complete safetensors file (${(error as Error).message})` };
  }
  try {
    const meta = out.metadata;
    if (!meta["stmerge.converter"]?.startsWith("stmerge-convert ")) return { ok: false, reason: "not written by stmerge convert" };
    if (meta["stmerge.source"] !== basename(file.input)) return { ok: false, reason: `converted from ${JSON.stringify(meta["stmerge.source"] ?? "(unknown)")}, not from ${basename(file.input)}` };
    if (!/^[0-9a-f]{64}$/.test(meta["stmerge.source_sha256"] ?? "")) return { ok: false, reason: "its provenance has no source SHA-256" };
    if ((meta["stmerge.precision"] ?? "keep") !== precision) return { ok: false, reason: `written with precision ${meta["stmerge.precision"]}, not ${precision}` };
    const [source, output] = await Promise.all([stat(file.input), stat(file.output)]);
    if (output.mtimeMs < source.mtimeMs) return { ok: false, reason: "older than the source (the source changed since)" };
    return { ok: true, format: meta["stmerge.detected_format"] as FileFormatKind | undefined, sizeBytes: output.size };
  } finally {
    await out.close();
  }
}

/** Error code, one-line message and the full detail (causes, stack) for the error log. */
function describeFailure(error: unknown): { code: string; message: string; detail: string } {
  const e = error as { code?: unknown; message?: unknown; stack?: unknown; cause?: unknown; details?: unknown } | undefined;
  const code = typeof e?.code === "string" ? e.code : "INTERNAL";
  const message = String(e?.message ?? error).split("\n")[0]!;
  const parts = [typeof e?.stack === "string" ? e.stack : message];
  if (e?.details !== undefined) parts.push(`details: ${JSON.stringify(e.details)}`);
  let cause = e?.cause as { stack?: unknown; message?: unknown; cause?: unknown } | undefined;
  for (let depth = 0; cause !== undefined && depth < 5; depth++) {
    parts.push(`caused by: ${typeof cause.stack === "string" ? cause.stack : String(cause.message ?? cause)}`);
    cause = cause.cause as typeof cause | undefined;
  }
  return { code, message, detail: parts.join("\n") };
}

/** The output folder exists and takes a file (a real write: `access` says yes to root on a read-only mount). */
async function prepareOutputDir(outputDir: string): Promise<void> {
  try {
    await mkdir(outputDir, { recursive: true });
    const probe = join(outputDir, `.stmerge-write-check-${process.pid}`);
    await writeFile(probe, "");
    await unlink(probe);
  } catch (error) {
    throw await fileSystemError(error, outputDir);
  }
}

/**
 * Converts every supported file of a folder (see `discoverConvertibleFiles`) with
 * `convertCheckpoint`, mirroring sub-folders into the output folder, `jobs` files at a time.
 * Each file ends converted, skipped (its output exists and verifies, see
 * `checkExistingConversion`; `overwrite` converts it again) or failed with its error's code and
 * message; the batch goes on past failures. A full or read-only disk stops it (later files
 * would fail the same way), as does `signal`: files in progress are abandoned (no output, temp
 * removed), files not started are listed as not attempted. A source that changes while it is
 * converted fails and its output is removed. Reports through callbacks; never prints.
 */
export async function convertFolder(folder: string, options: ConvertFolderOptions = {}): Promise<BatchConvertSummary> {
  const started = Date.now();
  const found = await discoverConvertibleFiles(folder, { ...(options.recursive ? { recursive: true } : {}), ...(options.outputDir ? { outputDir: options.outputDir } : {}) });
  const { files } = found;
  options.onDiscovered?.(found);
  const jobs = Math.max(1, Math.floor(options.jobs ?? 1));
  const precision = options.precision ?? "keep";
  const results: (BatchFileResult | undefined)[] = new Array(files.length).fill(undefined);
  let stopped: BatchConvertSummary["stopped"];
  if (files.length > 0) await prepareOutputDir(found.outputDir);

  // Two inputs of one folder with the same stem (a.ckpt, a.pt) would write one output.
  const firstFor = new Map<string, BatchConvertFile>();
  for (const file of files) if (!firstFor.has(file.output)) firstFor.set(file.output, file);

  const convertOne = async (file: BatchConvertFile, index: number): Promise<BatchFileResult> => {
    const t0 = Date.now();
    const base = { file, index, sizeBefore: file.sizeBytes };
    const elapsed = () => Date.now() - t0;
    const owner = firstFor.get(file.output)!;
    if (owner !== file) {
      return { ...base, status: "failed", format: undefined, sizeAfter: 0, ms: elapsed(), error: { code: "BATCH_OUTPUT_COLLISION", message: `${file.input}: same output as ${owner.relative} (${file.output}); convert it on its own with -o`, detail: "two inputs share a file stem" } };
    }
    if (!options.overwrite) {
      const exists = await stat(file.output).then(() => true, () => false);
      if (exists) {
        const check = await checkExistingConversion(file, precision);
        if (check.ok) return { ...base, status: "skipped", format: check.format, sizeAfter: check.sizeBytes, ms: elapsed(), skipReason: "already converted" };
        const message = `${file.output}: exists and is not a conversion of this file (${check.reason}); --overwrite replaces it`;
        return { ...base, status: "failed", format: undefined, sizeAfter: 0, ms: elapsed(), error: { code: "OUTPUT_EXISTS", message, detail: message } };
      }
    }
    await mkdir(dirname(file.output), { recursive: true });
    const inputSha256 = await options.inputSha256For?.(file);
    const tap = options.outputTapFor?.(file);
    const before = await stat(file.input);
    const onProgress = options.onFileProgress ? (event: ProgressEvent) => options.onFileProgress!(file, event) : undefined;
    const result = await convertCheckpoint(file.input, {
      output: file.output,
      overwrite: Boolean(options.overwrite),
      ...(options.prune === undefined ? {} : { prune: options.prune }),
      precision,
      ...(options.signal ? { signal: options.signal } : {}),
      ...(tap ? { outputTap: tap } : {}),
      ...(inputSha256 ? { inputSha256 } : {}),
      ...(onProgress ? { onProgress } : {}),
    });
    const after = await stat(file.input);
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
      // Its hash and tensors may come from two different versions of the file.
      await rm(file.output, { force: true });
      throw new ConvertError("CONVERT_SOURCE_CHANGED", `${file.input}: changed while it was being converted (size or modification time); its output was removed, convert it again`, { file: file.input });
    }
    return { ...base, status: "converted", format: result.detected.kind, sizeAfter: result.outputBytes, ms: elapsed(), result };
  };

  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < files.length && stopped === undefined && !options.signal?.aborted) {
      const at = next++;
      const file = files[at]!;
      options.onFileStart?.(file, at + 1, files.length);
      const t0 = Date.now();
      let done: BatchFileResult;
      try {
        done = await convertOne(file, at + 1);
      } catch (caught) {
        const errnoPath = (caught as NodeJS.ErrnoException | undefined)?.path;
        const error = await fileSystemError(caught, typeof errnoPath === "string" ? errnoPath : file.input);
        const failure = describeFailure(error);
        const aborted = options.signal?.aborted === true;
        done = { file, index: at + 1, status: aborted ? "interrupted" : "failed", format: undefined, sizeBefore: file.sizeBytes, sizeAfter: 0, ms: Date.now() - t0, error: failure };
        if (aborted) stopped ??= { reason: "aborted", message: "interrupted" };
        else if (BATCH_STOPPING_CODES.has(failure.code)) stopped ??= { reason: "disk", message: `stopped after ${file.relative}: ${failure.message}` };
      }
      results[at] = done;
      await options.onFileDone?.(done);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, Math.max(1, files.length)) }, lane));
  if (options.signal?.aborted) stopped ??= { reason: "aborted", message: "interrupted" };
  const all = files.map((file, i): BatchFileResult => results[i] ?? { file, index: i + 1, status: "not-attempted", format: undefined, sizeBefore: file.sizeBytes, sizeAfter: 0, ms: 0 });
  return { folder: found.folder, outputDir: found.outputDir, results: all, unsupported: found.unsupported, ...(stopped ? { stopped } : {}), ms: Date.now() - started, jobs };
}
