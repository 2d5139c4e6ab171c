import { stat } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import {
  assertNotSameFile,
  convertDType,
  isFloatDType,
  PRECISION_DTYPE,
  DTYPE_SIZE,
  type DType,
  type Precision,
  type ProgressCallback,
  type OrderedTap,
  orderedTap,
  type OutputByteTap,
  type TensorDescriptor,
  throwIfAborted,
} from "@stmerge/core-tensors";
import { MERGE_ENGINE_VERSION } from "../engine-version.js";
import { checkWrittenOutput, digestOf } from "./check-written-output.js";
import { ConvertError } from "./convert-error.js";
import { detectFileFormat, type FileFormatReport } from "./detect-file-format.js";
import { createDeferredHeaderWriter, type DeferredHeaderWriter } from "./deferred-header-writer.js";
import { hashFileInWorker, hashFileOnThisThread, type HashedFile } from "./hash-file.js";
import { openStateDict, type ModelFileFormat, type StateDictSource } from "./open-state-dict.js";
import { planPruning } from "./prune-rules.js";

export const CONVERTER_NAME = `stmerge-convert ${MERGE_ENGINE_VERSION}`;

export interface ConvertOptions {
  /** Output path; default `<input stem>.safetensors` beside the input. */
  readonly output?: string;
  readonly overwrite?: boolean;
  /** Adaptive pruning (SD checkpoints lose EMA copies and training state); default true. */
  readonly prune?: boolean;
  /** `keep` (default) or a float precision every float tensor is cast to. */
  readonly precision?: "keep" | Precision;
  readonly onProgress?: ProgressCallback;
  /** Aborts between tensors; the temp output is removed. */
  readonly signal?: AbortSignal;
  /**
   * Sees every byte of the output in file order (the CLI hashes the output this way): while it is
   * written when `inputSha256` is known, else during the read-back check (the header comes last).
   */
  readonly outputTap?: OutputByteTap;
  /**
   * The input's SHA-256 when already known (the cache's, for this path, size and mtime): the input
   * is not hashed again, the header is final from the start, and `outputTap` takes the output's
   * bytes as they are written, so the read-back only confirms the header and tensor digests.
   * Anything but 64 lowercase hex digits is ignored (the input is hashed).
   */
  readonly inputSha256?: string;
  /**
   * Torch inputs: write even when the tensors add up to more than 4x the input (many tensors
   * viewing one storage, expanded views). Off by default, so a small file cannot make convert
   * write gigabytes (`CHECKPOINT_AMPLIFICATION`); for a CLI flag on files the user trusts.
   */
  readonly allowAmplification?: boolean;
}

export interface ConvertResult {
  readonly input: string;
  readonly output: string;
  readonly sourceFormat: ModelFileFormat;
  readonly detected: FileFormatReport;
  readonly wrapperPath: readonly string[];
  readonly strippedPrefixes: number;
  readonly tensorsWritten: number;
  readonly pruned: readonly string[];
  readonly skippedEntries: readonly string[];
  readonly inputSha256: string;
  /**
   * Size and mtime of the input as opened to hash it (absent when `inputSha256` was given): what
   * a cache records the hash under, so an input changed since then looks stale, not hashed.
   */
  readonly inputHashedAs?: { readonly size: number; readonly mtimeMs: number };
  readonly outputBytes: number;
  readonly precision: "keep" | Precision;
  readonly metadata: Readonly<Record<string, string>>;
}

/** `model.ckpt` → `model.safetensors` beside it. */
export function defaultConvertOutput(input: string): string {
  const ext = extname(input);
  return join(dirname(input), `${basename(input, ext)}.safetensors`);
}


/**
 * Below this size the input is hashed on this thread: a worker's start-up (about 200 ms on the
 * loaded 2-core machine) costs more than hashing a small file, and a folder of small files pays
 * it per file (cli README, batch conversion benchmark).
 */
const WORKER_HASH_MIN_BYTES = 64 * 1024 * 1024;

interface StreamContext {
  readonly input: string;
  readonly state: StateDictSource;
  readonly from: readonly TensorDescriptor[];
  readonly to: readonly TensorDescriptor[];
  readonly writer: DeferredHeaderWriter;
  /** Digest of the exact bytes written per tensor, for the read-back check. */
  readonly written: Map<string, string>;
  readonly onProgress?: ProgressCallback;
  readonly signal?: AbortSignal | undefined;
  /** Header-first path: the input's known SHA-256, and the output's tap fed while writing. */
  readonly knownInputSha256?: string | undefined;
  readonly tap?: OrderedTap | undefined;
}

/**
 * Tensor by tensor in state-dict order: two buffers of the largest tensor, the next read
 * overlapping the current write, while a worker thread reads and hashes the input on its own.
 * (Reading each storage once and handing the bytes to the hasher instead was measured slower
 * here: fresh buffers per storage cost more than the worker's second, parallel read.)
 */
async function convertByTensor(ctx: StreamContext): Promise<HashedFile | string> {
  const hashing: Promise<HashedFile | string> = ctx.knownInputSha256 !== undefined ? Promise.resolve(ctx.knownInputSha256) : hashInput(ctx);
  hashing.catch(() => undefined);
  const { layout } = ctx.writer;
  await ctx.tap?.write(layout.headerBytes, 0);
  const { from: sources, to: targets, state } = ctx;
  const largest = sources.reduce((n, d) => Math.max(n, d.byteLength), 0);
  const buffers = [new Uint8Array(largest), new Uint8Array(largest)];
  const totalBytes = targets.reduce((n, d) => n + d.byteLength, 0);
  let done = 0;
  let pending = sources.length > 0 ? state.source.read(sources[0]!.name, buffers[0]) : undefined;
  for (let i = 0; i < sources.length; i++) {
    const from = sources[i]!;
    const to = targets[i]!;
    const raw = await pending!;
    throwIfAborted(ctx.signal, ctx.input, "conversion");
    const next = sources[i + 1];
    pending = next ? state.source.read(next.name, buffers[(i + 1) % 2]) : undefined;
    // A failing read is awaited (and thrown) on the next turn; this keeps it from being unhandled meanwhile.
    pending?.catch(() => undefined);
    const bytes = to.dtype === from.dtype ? raw : convertDType(raw, from.dtype, to.dtype);
    ctx.written.set(to.name, digestOf(bytes));
    await Promise.all([ctx.writer.write(to.name, bytes), ctx.tap?.write(bytes, layout.dataStart + layout.offsets.get(to.name)!)]);
    done += to.byteLength;
    ctx.onProgress?.({ phase: "convert", bytesDone: done, bytesTotal: totalBytes, tensor: to.name, tensorsDone: i + 1, tensorsTotal: targets.length });
  }
  return hashing;
}

async function hashInput(ctx: StreamContext): Promise<HashedFile> {
  const inputBytes = (await stat(ctx.input)).size;
  return inputBytes < WORKER_HASH_MIN_BYTES ? hashFileOnThisThread(ctx.input, ctx.onProgress) : hashFileInWorker(ctx.input, ctx.onProgress, ctx.signal);
}

function targetDType(dtype: DType, precision: "keep" | Precision): DType {
  if (precision === "keep" || !isFloatDType(dtype) || dtype === "F8_E4M3" || dtype === "F8_E5M2") return dtype;
  return PRECISION_DTYPE[precision];
}

/**
 * Converts a torch checkpoint (read by safe-pickle, nothing executed) or a safetensors file to
 * safetensors: finds the state dict, strips `module.` prefixes, detects the format, prunes
 * adaptively, optionally casts precision, streams tensor by tensor into an atomic sink (peak
 * memory ≈ the largest tensor), then reads the output back and checks every tensor against
 * what was written from the source before reporting success.
 */
export async function convertCheckpoint(input: string, options: ConvertOptions = {}): Promise<ConvertResult> {
  const output = options.output ?? defaultConvertOutput(input);
  const precision = options.precision ?? "keep";
  await assertNotSameFile(output, [input]);
  const { onProgress } = options;

  const state = await openStateDict(input, { allowAmplification: options.allowAmplification === true });
  try {
    const detected = detectFileFormat(state.source.descriptors, { wrapperPath: state.wrapperPath });
    const plan = planPruning(state.source.descriptors.map((d) => d.name), detected.kind, options.prune ?? true);
    if (plan.kept.length === 0) throw new ConvertError("CONVERT_NOTHING_LEFT", `${input}: pruning would remove every tensor; use --no-prune`, { file: input });
    const sourceDescriptors = plan.kept.map((name) => state.source.get(name)!);
    const outDescriptors: TensorDescriptor[] = sourceDescriptors.map((d) => {
      const dtype = targetDType(d.dtype, precision);
      return { name: d.name, dtype, shape: d.shape, byteLength: dtype === d.dtype ? d.byteLength : (d.byteLength / DTYPE_SIZE[d.dtype]) * DTYPE_SIZE[dtype] };
    });

    // The header (which holds the input's hash) is written last, planned with a placeholder of
    // the same length; the hash is computed on a worker thread while the tensors stream. A known
    // hash makes the header final from the start, so the output can be hashed as it is written.
    const knownInputSha256 = options.inputSha256 !== undefined && /^[0-9a-f]{64}$/.test(options.inputSha256) ? options.inputSha256 : undefined;
    const metadata: Record<string, string> = {
      format: "pt",
      "stmerge.source": basename(input),
      "stmerge.source_sha256": knownInputSha256 ?? "0".repeat(64),
      "stmerge.source_format": state.fileFormat,
      "stmerge.detected_format": detected.kind,
      "stmerge.converter": CONVERTER_NAME,
      "stmerge.pruned_tensors": String(plan.pruned.length),
      "stmerge.precision": precision,
    };
    if (detected.architecture && detected.architecture.architecture !== "unknown") metadata["stmerge.architecture"] = detected.architecture.label;

    const writer = await createDeferredHeaderWriter(output, outDescriptors, metadata, { overwrite: options.overwrite ?? false });
    const written = new Map<string, string>();
    let inputSha256: string;
    let inputHashedAs: { size: number; mtimeMs: number } | undefined;
    let outputBytes = 0;
    try {
      const headerFirst = knownInputSha256 !== undefined;
      if (headerFirst) await options.outputTap?.start?.({ size: writer.layout.totalSize, head: writer.layout.headerBytes });
      const tap = headerFirst && options.outputTap ? orderedTap(options.outputTap) : undefined;
      const ctx: StreamContext = { input, state, from: sourceDescriptors, to: outDescriptors, writer, written, signal: options.signal, knownInputSha256, tap, ...(onProgress ? { onProgress } : {}) };
      const hashed = await convertByTensor(ctx);
      inputSha256 = typeof hashed === "string" ? hashed : hashed.sha256;
      if (typeof hashed !== "string") inputHashedAs = { size: hashed.size, mtimeMs: hashed.mtimeMs };
      throwIfAborted(options.signal, input, "conversion");
      metadata["stmerge.source_sha256"] = inputSha256;
      // Read back through the temp file's own handle before the rename: a failed check removes
      // only our temp file, and a concurrent run writing the same output cannot be mistaken for ours.
      await writer.finish(metadata, async (handle) => {
        outputBytes = headerFirst
          ? await checkWrittenOutput({ path: output, handle }, outDescriptors, metadata, written, onProgress, options.signal, undefined, writer.layout.headerBytes)
          : await checkWrittenOutput({ path: output, handle }, outDescriptors, metadata, written, onProgress, options.signal, options.outputTap);
      });
    } catch (error) {
      await writer.abort();
      throw error;
    }
    return {
      input,
      output,
      sourceFormat: state.fileFormat,
      detected,
      wrapperPath: state.wrapperPath,
      strippedPrefixes: state.strippedPrefixes,
      tensorsWritten: outDescriptors.length,
      pruned: plan.pruned,
      skippedEntries: state.skipped,
      inputSha256,
      ...(inputHashedAs ? { inputHashedAs } : {}),
      outputBytes,
      precision,
      metadata,
    };
  } finally {
    await state.close();
  }
}
