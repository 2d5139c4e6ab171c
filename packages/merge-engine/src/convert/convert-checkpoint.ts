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
   * Bytes of each piece read ahead into convert's few read buffers (default 4 MiB): consecutive
   * tensors are packed into one, a larger tensor is read in several; while one piece is written
   * and hashed, the next ones are read.
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

/**
 * Bytes of each piece convert reads, writes and hashes at a time by default (consecutive small
 * tensors packed into one, a larger one split), and how many pieces' buffers it takes in turn.
 * Few and small on purpose: the reads, the direct writes and the output's hashers keep meeting
 * the same 12 MiB of pages, whose translations stay in the cores' TLBs. Through two buffers of
 * the largest tensor (152 MB for SD1.5 in F32), on the project's 2-vCPU VM, SHA-256 ran at
 * 1.1–1.2 GB/s instead of 1.7 (a page walk per 4 KiB: the cliff lies between 8 and 16 MiB of
 * pages cycled through) and the reads into them cost 1.3–2× as much. 1 and 2 MiB pieces
 * measured slower (more calls per byte); 8 MiB pieces and four buffers no faster.
 */
const PIECE_BYTES = 4 * 2 ** 20;
const PIECE_BUFFERS = 3;

/** Elements [from, to) of tensor k, and where in a piece's buffer their bytes as read go. */
interface PiecePart {
  readonly k: number;
  readonly from: number;
  readonly to: number;
  view: Uint8Array;
}

/**
 * In state-dict order, the one read of the input, piece by piece through PIECE_BUFFERS buffers
 * used in turn: a piece packs consecutive small tensors, or holds part of a larger one (its
 * pieces end on blocks of the output where they can, so the direct writes need no staging), and
 * the reads of the next pieces run while one is written and hashed. Each tensor's CRC-32 is
 * taken piece by piece of the bytes handed to the writer, while the write runs, and checked
 * against its source: the CRC-32 its zip recorded for that storage; a tensor without one (cast,
 * a view, a legacy file) is read back from the file instead, in the shadow of the next tensors.
 * A tensor whose source reads ranges by reading it whole (views, legacy files) is read whole
 * once, its pieces copied from there. Returns the CRC-32 of the data section.
 */
async function convertByTensor(ctx: StreamContext): Promise<number> {
  const { from: sources, to: targets, state, writer, layout, feed, output } = ctx;
  const pieceBytes = Math.max(1, ctx.readAheadBytes ?? PIECE_BYTES);
  /** Where byte `offset` of output tensor `name` lies in the file. */
  const filePosition = (name: string, offset = 0): number => layout.dataStart + layout.offsets.get(name)! + offset;
  // The parts: whole tensors up to a piece, the others in pieces of `step` elements whose output
  // ends on a block once the first has reached one.
  const parts: Omit<PiecePart, "view">[] = [];
  sources.forEach((from, k) => {
    const to = targets[k]!;
    const sourceSize = DTYPE_SIZE[from.dtype];
    const targetSize = DTYPE_SIZE[to.dtype];
    const n = from.byteLength / sourceSize;
    const widest = Math.max(sourceSize, targetSize);
    if (n * widest <= pieceBytes) {
      parts.push({ k, from: 0, to: n });
      return;
    }
    const perBlock = DIRECT_ALIGNMENT / targetSize;
    const step = Math.max(perBlock, Math.floor(pieceBytes / widest / perBlock) * perBlock);
    const position = filePosition(to.name);
    const toBlock = (DIRECT_ALIGNMENT - (position % DIRECT_ALIGNMENT)) % DIRECT_ALIGNMENT;
    let at = toBlock % targetSize === 0 ? toBlock / targetSize : 0;
    if (at > 0) parts.push({ k, from: 0, to: Math.min(at, n) });
    for (; at < n; at += step) parts.push({ k, from: at, to: Math.min(n, at + step) });
  });
  const rawBytesOf = (part: Omit<PiecePart, "view">): number => (part.to - part.from) * DTYPE_SIZE[sources[part.k]!.dtype];
  // Shared memory starting on a page: the output's hashers on worker threads read the bytes where
  // they lie, and a part read as written lies where its address agrees with its place in the
  // output, so it goes to the disk from there (direct writes). Each buffer is as large as a piece
  // or its largest part (plus a block, to lay it out), or as a smaller file's whole data, and is
  // made as first used (a small file uses one).
  const totalRaw = parts.reduce((n, part) => n + rawBytesOf(part), 0);
  const capacity = parts.reduce((most, part) => Math.max(most, rawBytesOf(part)), Math.min(pieceBytes, totalRaw)) + DIRECT_ALIGNMENT - 1;
  const buffers: Uint8Array[] = [];
  const bufferOf = (piece: number): Uint8Array => (buffers[piece % PIECE_BUFFERS] ??= pageAlignedSharedBytes(capacity));
  const pieces: PiecePart[][] = [];
  let used = 0;
  for (const part of parts) {
    const to = targets[part.k]!;
    const length = rawBytesOf(part);
    const position = filePosition(to.name, part.from * DTYPE_SIZE[to.dtype]);
    const buffer = pieces.length > 0 ? bufferOf(pieces.length - 1) : undefined;
    let view = buffer && viewLaidOutFor(buffer.subarray(used), length, position);
    if (!buffer || !view || view.byteLength < length || (used > 0 && view.byteOffset - buffer.byteOffset + length > pieceBytes)) {
      pieces.push([]);
      view = viewLaidOutFor(bufferOf(pieces.length - 1), length, position);
    }
    pieces.at(-1)!.push({ ...part, view });
    used = view.byteOffset - bufferOf(pieces.length - 1).byteOffset + length;
  }
  // A tensor read whole for its pieces (its source has no cheap ranges), while its pieces are read.
  let wholeTensor: { k: number; bytes: Uint8Array } | undefined;
  const readPart = async (part: PiecePart): Promise<Uint8Array> => {
    const from = sources[part.k]!;
    const size = DTYPE_SIZE[from.dtype];
    const n = from.byteLength / size;
    if (part.from === 0 && part.to === n) return state.source.read(from.name, part.view);
    if (state.readsRangesInPlace(from.name)) return state.source.readRange(from.name, part.from * size, part.to * size, part.view);
    if (wholeTensor?.k !== part.k) wholeTensor = { k: part.k, bytes: await state.source.read(from.name) };
    const bytes = wholeTensor.bytes.subarray(part.from * size, part.to * size);
    part.view.set(bytes);
    if (part.to === n) wholeTensor = undefined;
    return part.view;
  };
  // Reads in file order, one after another; piece p + PIECE_BUFFERS − 1's are issued when piece p
  // starts, and run once `free` resolves: piece p − 1, in the buffer they fill, is written and fed.
  const reads: Promise<Uint8Array>[] = [];
  let readChain: Promise<unknown> = Promise.resolve();
  const issuePiece = (p: number, free: Promise<unknown>): void => {
    for (const part of pieces[p] ?? []) {
      const read = Promise.all([readChain, free]).then(() => readPart(part));
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
  let tensorsDone = 0;
  // The CRC-32s of the tensor in hand so far: as written, and as read (for its recorded one).
  let writtenCrc = 0;
  let readCrc = 0;
  // What holds the buffer of the piece in hand: its writes, and the feed taking its bytes (the
  // tap hashes them where they lie). Not awaited part by part, so each write is queued behind the
  // one before it and the disk does not wait for this loop, but before the buffer is read into again.
  let holding: Promise<unknown>[] = [];
  // The writes in file order: rejects with the first that failed (once the writer has failed, it
  // refuses the writes after it, and a refusal may settle first).
  let writes: Promise<void> = Promise.resolve();
  // The feed is told of the writes in file order: alongside a write once it is live and nothing
  // before it is still waiting; until then after each write, one after another.
  let feeds: Promise<void> = Promise.resolve();
  let feedsWaiting = 0;
  for (let p = 0; p < PIECE_BUFFERS - 1; p++) issuePiece(p, Promise.resolve());
  try {
    let r = 0;
    for (let p = 0; p < pieces.length; p++) {
      const previous = Promise.all(holding);
      previous.catch(() => undefined);
      holding = [];
      issuePiece(p + PIECE_BUFFERS - 1, previous);
      for (const part of pieces[p]!) {
        const from = sources[part.k]!;
        const to = targets[part.k]!;
        const raw = await reads[r++]!;
        throwIfAborted(ctx.signal, ctx.input, "conversion");
        const bytes = to.dtype === from.dtype ? raw : convertDType(raw, from.dtype, to.dtype);
        const offset = part.from * DTYPE_SIZE[to.dtype];
        const at = filePosition(to.name, offset);
        const writing = writer.write(to.name, bytes, offset);
        writing.catch(() => undefined);
        writes = writes.then(() => writing);
        writes.catch(() => undefined);
        let fed: Promise<void> | undefined;
        if (feed?.live === true && feedsWaiting === 0) fed = feed.written(bytes, at);
        else if (feed) {
          feedsWaiting++;
          fed = feeds.then(() => writing).then(() => feed.written(bytes, at));
          feeds = fed.finally(() => void feedsWaiting--);
          feeds.catch(() => undefined);
        }
        fed?.catch(() => undefined);
        holding.push(writing, ...(fed ? [fed] : []));
        // Taken on this thread while the write runs on the pool.
        const crc = crc32(bytes);
        const first = part.from === 0;
        const last = part.to * DTYPE_SIZE[to.dtype] === to.byteLength;
        writtenCrc = first ? crc : crc32Combine(writtenCrc, crc, bytes.byteLength);
        const recorded = ctx.recordedCrc32[part.k];
        if (recorded !== undefined) {
          const crcRead = bytes === raw ? crc : crc32(raw);
          readCrc = first ? crcRead : crc32Combine(readCrc, crcRead, raw.byteLength);
          if (last) checkTensorDigest(output, to.name, readCrc, recorded);
        }
        if (last && (recorded === undefined || bytes !== raw)) {
          // One read-back at a time; its failure surfaces at the next tensor or at the end.
          const tensor = { name: to.name, offset: filePosition(to.name), byteLength: to.byteLength, crc: writtenCrc };
          readBack ??= readBackBuffer();
          const buffer = readBack;
          // After the write and the feed (the tap may still be taking the bytes): the read-back sees the file as it is then.
          checking = checking.then(() => Promise.all([writing, fed])).then(() => checkWrittenTensor(output, writer.readWritten, tensor, buffer));
          checking.catch(() => undefined);
        }
        dataCrc = crc32Combine(dataCrc, crc, bytes.byteLength);
        done += bytes.byteLength;
        if (last) tensorsDone++;
        ctx.onProgress?.({ phase: "convert", bytesDone: done, bytesTotal: totalBytes, tensor: to.name, tensorsDone, tensorsTotal: targets.length });
      }
    }
    await Promise.all(holding);
    await feeds;
    await checking;
  } catch (error) {
    throw await writes.then(
      () => error,
      (writeFailure: unknown) => writeFailure,
    );
  } finally {
    await Promise.allSettled(holding);
    await readChain;
    await feeds.catch(() => undefined);
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
 * adaptively, optionally casts precision, streams piece by piece into an atomic sink (peak
 * memory: three 4 MiB pieces, and the largest view or legacy tensor, read whole), and checks every
 * tensor written against its source before reporting success.
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
