import { stat } from "node:fs/promises";
import { basename, dirname, extname, join } from "node:path";
import {
  assertNotSameFile,
  convertDType,
  crc32,
  crc32Combine,
  createSafetensorsWriter,
  DIRECT_ALIGNMENT,
  isFloatDType,
  pageAlignedSharedBytes,
  planSafetensorsLayout,
  PRECISION_DTYPE,
  DTYPE_SIZE,
  type DType,
  type FileIdentity,
  type Precision,
  type ProgressCallback,
  type OutputByteTap,
  type SafetensorsLayout,
  type TensorDescriptor,
  throwIfAborted,
  viewLaidOutFor,
} from "@stmerge/core-tensors";
import { MERGE_ENGINE_VERSION } from "../engine-version.js";
import { checkTensorDigest, checkWrittenHeader, checkWrittenTensor, readBackBuffer } from "./check-written-output.js";
import { ConvertError } from "./convert-error.js";
import { detectFileFormat, type FileFormatReport } from "./detect-file-format.js";
import { hashFileInWorker, hashFileOnThisThread, type HashedFile } from "./hash-file.js";
import { openStateDict, type ModelFileFormat, type StateDictSource } from "./open-state-dict.js";
import { createOutputFeed, type OutputFeed } from "./output-feed.js";
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
   * Sees every byte of the output in file order (the CLI hashes the output this way): as it is
   * written when `inputSha256` is known; else from the moment the input's SHA-256 (hashed
   * meanwhile) makes the header final, after the bytes written before that are read back.
   */
  readonly outputTap?: OutputByteTap;
  /**
   * The input's SHA-256 when already known (the cache's, for this path, size and mtime): the input
   * is not hashed again and the header is final from the start.
   * Anything but 64 lowercase hex digits is ignored (the input is hashed).
   */
  readonly inputSha256?: string;
  /**
   * Torch inputs: write even when the tensors add up to more than 4x the input (many tensors
   * viewing one storage, expanded views). Off by default, so a small file cannot make convert
   * write gigabytes (`CHECKPOINT_AMPLIFICATION`); for a CLI flag on files the user trusts.
   */
  readonly allowAmplification?: boolean;
  /**
   * Bytes of consecutive tensors read ahead as one group into each of convert's two read buffers
   * (default 64 MiB; a larger tensor is a group of its own): while one group is written, the next
   * is read.
   */
  readonly readAheadBytes?: number;
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
  /** zlib's CRC-32 of the whole output, combined from the header's and each tensor's CRC-32 taken as written. */
  readonly outputCrc32: number;
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
  readonly output: string;
  readonly state: StateDictSource;
  readonly from: readonly TensorDescriptor[];
  readonly to: readonly TensorDescriptor[];
  /** Per tensor: the CRC-32 the checkpoint recorded for its bytes as read, when it has one. */
  readonly recordedCrc32: readonly (number | undefined)[];
  readonly writer: ReturnType<typeof createSafetensorsWriter>;
  readonly layout: SafetensorsLayout;
  readonly feed: OutputFeed | undefined;
  readonly onProgress?: ProgressCallback;
  readonly signal?: AbortSignal | undefined;
  readonly readAheadBytes?: number | undefined;
}

/** The most bytes of consecutive tensors read ahead as one group by default (see convertByTensor). */
const READ_AHEAD_BYTES = 64 * 2 ** 20;

/**
 * Tensor by tensor in state-dict order, the one read of the input: two buffers of the largest
 * tensor, used in turn by groups of consecutive tensors packed into one, a group's reads running
 * while the group before it is written (so a large tensor after small ones is not waited for).
 * Each tensor's CRC-32 is taken of the bytes handed to the writer, while the write runs, and
 * checked against its source: the CRC-32 its zip recorded; a tensor without one (cast, a view, a
 * legacy file) is read back from the file instead, in the shadow of the next tensors. Returns the
 * CRC-32 of the data section.
 */
async function convertByTensor(ctx: StreamContext): Promise<number> {
  const { from: sources, to: targets, state, writer, layout, feed, output } = ctx;
  const largest = sources.reduce((n, d) => Math.max(n, d.byteLength), 0);
  // Shared memory: a hashing tap on worker threads reads the tensors where they lie (no copy).
  // Starting on a page, and each tensor read where its address agrees with its place in the
  // output, so a tensor written as read goes to the disk from there (direct writes).
  const capacity = largest + DIRECT_ALIGNMENT - 1;
  const buffers = [pageAlignedSharedBytes(capacity), pageAlignedSharedBytes(capacity)];
  // Tensor k's view, and its group: group g packs tensors into buffers[g % 2] while they fit in
  // readAheadBytes (a larger tensor is a group of its own): a buffer's pages past its largest
  // group are never touched, so resident memory stays that of one tensor per buffer.
  const readAheadBytes = ctx.readAheadBytes ?? READ_AHEAD_BYTES;
  const views: Uint8Array[] = [];
  const groupOf: number[] = [];
  for (let k = 0, group = 0, used = 0; k < sources.length; k++) {
    const length = sources[k]!.byteLength;
    const position = layout.dataStart + layout.offsets.get(targets[k]!.name)!;
    let view = viewLaidOutFor(buffers[group % 2]!.subarray(used), length, position);
    if (view.byteLength < length || (used > 0 && view.byteOffset - buffers[group % 2]!.byteOffset + length > readAheadBytes)) {
      group++;
      view = viewLaidOutFor(buffers[group % 2]!, length, position);
    }
    views.push(view);
    groupOf.push(group);
    used = view.byteOffset - buffers[group % 2]!.byteOffset + length;
  }
  // Reads in file order, one after another; a group's are issued when the group before it starts,
  // and run once `free` resolves: the group before that one, in the buffer they fill, is written
  // and hashed.
  const reads: Promise<Uint8Array>[] = [];
  let readChain: Promise<unknown> = Promise.resolve();
  const issueGroup = (group: number, free: Promise<unknown>): void => {
    for (let k = reads.length; k < sources.length && groupOf[k] === group; k++) {
      const read = Promise.all([readChain, free]).then(() => state.source.read(sources[k]!.name, views[k]!));
      // A failing read is awaited (and thrown) in its turn; this keeps it from being unhandled meanwhile.
      read.catch(() => undefined);
      reads.push(read);
      readChain = read.catch(() => undefined);
    }
  };
  const totalBytes = targets.reduce((n, d) => n + d.byteLength, 0);
  let readBack: Uint8Array | undefined;
  let checking: Promise<void> = Promise.resolve();
  let dataCrc = 0;
  let done = 0;
  // The hashing of a live feed, which takes the tensors where they lie: not awaited tensor by
  // tensor (the writes go on meanwhile) but before their buffer is read into again.
  let hashing: Promise<void>[] = [];
  issueGroup(0, Promise.resolve());
  try {
    for (let i = 0; i < sources.length; i++) {
      const from = sources[i]!;
      const to = targets[i]!;
      if (i === 0 || groupOf[i] !== groupOf[i - 1]) {
        const previous = Promise.all(hashing);
        previous.catch(() => undefined);
        hashing = [];
        issueGroup(groupOf[i]! + 1, previous);
      }
      const raw = await reads[i]!;
      throwIfAborted(ctx.signal, ctx.input, "conversion");
      const bytes = to.dtype === from.dtype ? raw : convertDType(raw, from.dtype, to.dtype);
      const at = layout.dataStart + layout.offsets.get(to.name)!;
      const feeding = feed?.live === true;
      const writing = writer.write(to.name, bytes);
      writing.catch(() => undefined);
      const hashed = feeding ? feed.written(bytes, at) : undefined;
      if (hashed) {
        hashed.catch(() => undefined);
        hashing.push(hashed);
      }
      // Taken on this thread while the write runs on the pool.
      const crc = crc32(bytes);
      const recorded = ctx.recordedCrc32[i];
      if (recorded !== undefined) checkTensorDigest(output, to.name, bytes === raw ? crc : crc32(raw), recorded);
      await writing;
      if (feed && !feeding) await feed.written(bytes, at);
      if (recorded === undefined || bytes !== raw) {
        // One read-back at a time; its failure surfaces at the next tensor or at the end.
        const tensor = { name: to.name, offset: at, byteLength: to.byteLength, crc };
        readBack ??= readBackBuffer();
        const buffer = readBack;
        // After the tap too (it may still be taking the bytes): the read-back sees the file as it is then.
        checking = checking.then(() => hashed).then(() => checkWrittenTensor(output, writer.readWritten, tensor, buffer));
        checking.catch(() => undefined);
      }
      dataCrc = crc32Combine(dataCrc, crc, to.byteLength);
      done += to.byteLength;
      ctx.onProgress?.({ phase: "convert", bytesDone: done, bytesTotal: totalBytes, tensor: to.name, tensorsDone: i + 1, tensorsTotal: targets.length });
    }
    await Promise.all(hashing);
    await checking;
  } finally {
    await Promise.allSettled(hashing);
    await readChain;
    await checking.catch(() => undefined);
  }
  return dataCrc;
}

/** The input's SHA-256, read by the hasher from the file the converter opened (refused if the path now names another). */
async function hashInput(input: string, opened: FileIdentity | undefined, onProgress: ProgressCallback | undefined, signal: AbortSignal | undefined): Promise<HashedFile> {
  const size = opened?.size ?? (await stat(input)).size;
  return size < WORKER_HASH_MIN_BYTES ? hashFileOnThisThread(input, onProgress, opened) : hashFileInWorker(input, onProgress, signal, opened);
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

    // The header holds the input's SHA-256. Unknown, it is hashed on a worker while the tensors
    // stream, the header written first with a placeholder of the same length and rewritten before
    // the rename (the writer's `finalMetadata`). A known hash makes the header final from the start.
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
    const headerFirst = knownInputSha256 !== undefined;
    let finalHead: Uint8Array | undefined;
    let outputBytes = 0;
    const writer = createSafetensorsWriter(output, {
      overwrite: options.overwrite ?? false,
      ...(headerFirst ? {} : { finalMetadata: async () => metadata }),
      // Before the rename, through the temp file's own handle: a failed check removes only our
      // temp file, and a concurrent run writing the same output cannot be mistaken for ours.
      verify: async (handle, layout) => {
        if (finalHead && Buffer.compare(finalHead, layout.headerBytes) !== 0) throw new ConvertError("CONVERT_VERIFY_FAILED", `${output}: the header written differs from the one hashed; output removed`, { file: output });
        outputBytes = await checkWrittenHeader({ path: output, handle }, outDescriptors, metadata, layout.headerBytes);
      },
    });
    await writer.begin(outDescriptors, metadata);
    const layout = writer.layout!;
    const opened = state.source.fileIdentity;
    const hashing: Promise<HashedFile | string> = knownInputSha256 !== undefined ? Promise.resolve(knownInputSha256) : hashInput(input, opened, onProgress, options.signal);
    hashing.catch(() => undefined);
    const feed = options.outputTap ? createOutputFeed(options.outputTap, { size: layout.totalSize, dataStart: layout.dataStart, path: output }, writer.readWritten, { signal: options.signal, onProgress }) : undefined;
    /** The final header: what the writer writes at commit, planned into the reserved room. */
    const finalHeaderFor = (sha256: string): Uint8Array => {
      metadata["stmerge.source_sha256"] = sha256;
      return planSafetensorsLayout(outDescriptors, metadata, output, { dataStart: layout.dataStart }).headerBytes;
    };
    let inputSha256: string;
    let inputHashedAs: { size: number; mtimeMs: number } | undefined;
    let dataCrc: number;
    let failed = false;
    try {
      if (headerFirst) {
        finalHead = layout.headerBytes;
        // Live before the first write, so every byte is hashed as written.
        await feed?.start(finalHead);
      } else {
        // The output's hashers start as soon as the header is known, catching up from the file.
        void hashing.then((hashed) => {
          // Not after a failure: the caller has closed the tap by then.
          if (typeof hashed !== "string" && finalHead === undefined && !failed) {
            try {
              finalHead = finalHeaderFor(hashed.sha256);
              void feed?.start(finalHead);
            } catch {
              // Planned again after the last tensor below, where the error surfaces.
              finalHead = undefined;
            }
          }
        }, () => undefined);
      }
      const ctx: StreamContext = { input, output, state, from: sourceDescriptors, to: outDescriptors, recordedCrc32: sourceDescriptors.map((d) => state.recordedCrc32(d.name)), writer, layout, feed, signal: options.signal, readAheadBytes: options.readAheadBytes, ...(onProgress ? { onProgress } : {}) };
      dataCrc = await convertByTensor(ctx);
      const hashed = await hashing;
      inputSha256 = typeof hashed === "string" ? hashed : hashed.sha256;
      if (typeof hashed !== "string") inputHashedAs = { size: hashed.size, mtimeMs: hashed.mtimeMs };
      if (finalHead === undefined) {
        finalHead = finalHeaderFor(inputSha256);
        void feed?.start(finalHead);
      }
      await feed?.finish();
      throwIfAborted(options.signal, input, "conversion");
      await writer.commit();
    } catch (error) {
      failed = true;
      await writer.abort();
      throw error;
    }
    const outputCrc32 = crc32Combine(crc32(finalHead), dataCrc, layout.totalSize - layout.dataStart);
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
      outputCrc32,
      precision,
      metadata,
    };
  } finally {
    await state.close();
  }
}
