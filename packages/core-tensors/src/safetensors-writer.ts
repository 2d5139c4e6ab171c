import { createAtomicFile, type AtomicFile, type AtomicFileOptions } from "./atomic-file.js";
import { openDirectReads, openDirectWrites, pageAlignedSharedBytes, type DirectWrites, type DirectWritesOptions } from "./direct-writes.js";
import { dtypeSize, isDType, shapeElementCount } from "./dtypes.js";
import { SafetensorsError, TensorIoError } from "./errors.js";
import { hasLoneSurrogate } from "./has-lone-surrogate.js";
import { fileSystemError } from "./file-system-error.js";
import { orderedTap, type OrderedTap, type OutputByteTap } from "./output-byte-tap.js";
import type { FileHandle } from "node:fs/promises";
import type { ProgressCallback } from "./progress.js";
import { readAheadChunks } from "./read-ahead-chunks.js";
import { readFully, writeFully } from "./read-fully.js";
import { throwIfAborted } from "./throw-if-aborted.js";
import type { TensorDescriptor, TensorSink } from "./tensor-source.js";

interface PlannedTensor {
  readonly descriptor: TensorDescriptor;
  readonly dataOffset: number;
  written: number;
}

/** Layout of a safetensors file computed from descriptors alone, before any data exists. */
export interface SafetensorsLayout {
  readonly headerBytes: Uint8Array;
  readonly dataStart: number;
  readonly totalSize: number;
  readonly offsets: ReadonlyMap<string, number>;
}

/**
 * Builds the header: `__metadata__` first, tensors in the given order laid out contiguously,
 * JSON padded with spaces so the data block starts on an 8-byte boundary, or at `dataStart` when
 * given (a header rewritten in place over a reserved one; refused when it would not fit).
 */
export function planSafetensorsLayout(descriptors: readonly TensorDescriptor[], metadata: Readonly<Record<string, string>> = {}, file = "<output>", options: { readonly dataStart?: number } = {}): SafetensorsLayout {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new SafetensorsError("SAFETENSORS_BAD_METADATA", `${file}: metadata value for ${JSON.stringify(k)} is not a string`, { file });
      if (hasLoneSurrogate(k) || hasLoneSurrogate(v)) throw new SafetensorsError("SAFETENSORS_BAD_METADATA", `${file}: metadata entry ${JSON.stringify(k)} holds a lone UTF-16 surrogate, which no safetensors reader accepts`, { file });
    }
    header.__metadata__ = { ...metadata };
  }
  const offsets = new Map<string, number>();
  let cursor = 0;
  for (const d of descriptors) {
    if (d.name === "__metadata__") throw new SafetensorsError("SAFETENSORS_BAD_ENTRY", `${file}: "__metadata__" cannot be a tensor name`, { file });
    if (hasLoneSurrogate(d.name)) throw new SafetensorsError("SAFETENSORS_BAD_NAME", `${file}: tensor name ${JSON.stringify(d.name)} holds a lone UTF-16 surrogate, which no safetensors reader accepts`, { file });
    if (offsets.has(d.name)) throw new SafetensorsError("SAFETENSORS_DUPLICATE_NAME", `${file}: tensor ${JSON.stringify(d.name)} given twice`, { file });
    if (!isDType(d.dtype)) throw new SafetensorsError("SAFETENSORS_UNKNOWN_DTYPE", `${file}: tensor ${JSON.stringify(d.name)} has unknown dtype ${String(d.dtype)}`, { file });
    if (!Array.isArray(d.shape) || !d.shape.every((dim) => Number.isSafeInteger(dim) && dim >= 0)) {
      throw new SafetensorsError("SAFETENSORS_BAD_SHAPE", `${file}: tensor ${JSON.stringify(d.name)} has an invalid shape ${JSON.stringify(d.shape)}`, { file });
    }
    const expected = shapeElementCount(d.shape) * dtypeSize(d.dtype);
    if (expected !== d.byteLength) {
      throw new SafetensorsError("SAFETENSORS_SIZE_MISMATCH", `${file}: tensor ${JSON.stringify(d.name)} shape ${JSON.stringify(d.shape)} × ${d.dtype} is ${expected} bytes, not ${d.byteLength}`, { file });
    }
    offsets.set(d.name, cursor);
    // Object keys that look like array indices ("0", "1") would be reordered by JS; that is
    // harmless for the format, which orders by data offset, not key order.
    Object.defineProperty(header, d.name, { value: { dtype: d.dtype, shape: [...d.shape], data_offsets: [cursor, cursor + d.byteLength] }, enumerable: true, writable: true, configurable: true });
    cursor += d.byteLength;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = options.dataStart === undefined ? Math.ceil((8 + json.byteLength) / 8) * 8 - 8 : options.dataStart - 8;
  if (json.byteLength > padded) {
    throw new SafetensorsError("SAFETENSORS_HEADER_CHANGED", `${file}: the final header needs ${8 + json.byteLength} bytes, ${padded + 8} were reserved; output discarded`, { file });
  }
  const headerBytes = new Uint8Array(8 + padded).fill(0x20);
  new DataView(headerBytes.buffer).setBigUint64(0, BigInt(padded), true);
  headerBytes.set(json, 8);
  return { headerBytes, dataStart: 8 + padded, totalSize: 8 + padded + cursor, offsets };
}

export interface SafetensorsWriterOptions extends AtomicFileOptions {
  /** Sees every byte of the file in file order as it is written (hashes of the output without a second read). */
  readonly tap?: OutputByteTap;
  /**
   * Metadata known only once every tensor is written (a merge's input hashes, taken in the same
   * pass). `commit` calls it and writes its header over the one `begin` wrote, padded with spaces
   * to the same length so no tensor moves (`begin`'s metadata must reserve the room: placeholders
   * of the same length). The `tap` then sees the finished file read back before the rename (the
   * header comes first, so it cannot see the bytes as they are written); progress phase "hash output".
   */
  readonly finalMetadata?: () => Promise<Readonly<Record<string, string>>>;
  /** Progress of the read-back for the tap (with `finalMetadata`). */
  readonly onProgress?: ProgressCallback;
  /** Stops the read-back for the tap (the temp file is removed). */
  readonly signal?: AbortSignal;
  /**
   * A check of the finished temp file before the rename, through the handle that wrote it, with
   * the final layout (after `finalMetadata`'s header is written); a throw removes the temp file.
   */
  readonly verify?: (handle: FileHandle, layout: SafetensorsLayout) => Promise<void>;
  /**
   * Write the file front to back with O_DIRECT (see `DirectWrites`), past the page cache:
   * "auto" (the default) for files of DIRECT_MIN_BYTES or more, where the platform and the
   * filesystem allow it and STMERGE_DIRECT_IO is not 0. A write out of file order ends it; the
   * rest goes through the page cache. `readWritten` meanwhile reads staged bytes from the staging
   * buffer and the others from the file, past the page cache too.
   */
  readonly directWrites?: "auto" | boolean;
  /** Passed to `openDirectWrites` (tests). */
  readonly directWritesOptions?: DirectWritesOptions;
}

/** Smaller outputs are written through the page cache (direct writes pay off on large files). */
const DIRECT_MIN_BYTES = 64 * 1024 * 1024;

const READ_BACK_CHUNK = 16 * 1024 * 1024;

/**
 * Feeds a finished temp file to a tap in file order, through the file's own handle, the next chunk
 * read while the tap takes this one (`readAheadChunks`).
 */
async function readBackToTap(tap: OutputByteTap, handle: FileHandle, layout: SafetensorsLayout, path: string, options: SafetensorsWriterOptions, directFrom: string | undefined): Promise<void> {
  const size = layout.totalSize;
  await tap.start?.({ size, head: layout.headerBytes });
  options.onProgress?.({ phase: "hash output", bytesDone: 0, bytesTotal: size });
  // A file written past the page cache is read back past it too (it is not in the cache).
  const direct = directFrom === undefined ? undefined : await openDirectReads(directFrom, handle);
  const read = async (into: Uint8Array, at: number): Promise<Uint8Array> => {
    if (direct) return direct.read(into, at);
    await readFully(handle, into, 0, into.byteLength, at, path);
    return into;
  };
  try {
    for await (const { at, bytes } of readAheadChunks(read, 0, () => size, Math.min(READ_BACK_CHUNK, Math.max(size, 1)), direct ? pageAlignedSharedBytes : undefined)) {
      throwIfAborted(options.signal, path, "hashing the output");
      await tap.bytes(bytes, at);
      options.onProgress?.({ phase: "hash output", bytesDone: at + bytes.byteLength, bytesTotal: size });
    }
  } finally {
    await direct?.close();
  }
}

/**
 * Streaming safetensors sink: the header is written at `begin`, tensors one at a time (or in
 * chunks) in any order, and the file appears at its path only on `commit`.
 */
export function createSafetensorsWriter(path: string, options: SafetensorsWriterOptions = {}): TensorSink & {
  readonly layout: SafetensorsLayout | undefined;
  /**
   * Reads back bytes already written (past the page cache while writing directly, see
   * `directWrites`; else from it, usually), through the temp file: what a caller hashes once
   * `finalMetadata`'s values are known, or checks as written.
   */
  readWritten(into: Uint8Array, offset: number): Promise<Uint8Array>;
  /** Whether the bytes written so far went past the page cache (see `directWrites`). */
  readonly wroteDirect: boolean;
  /** Whether the next write in file order goes past the page cache. */
  readonly writingDirect: boolean;
  fileOffsetOf(name: string, offset: number): number | undefined;
} {
  let file: AtomicFile | undefined;
  let layout: SafetensorsLayout | undefined;
  const planned = new Map<string, PlannedTensor>();
  let failed = false;
  let tap: OrderedTap | undefined;
  let direct: DirectWrites | undefined;

  const guard = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (error) {
      failed = true;
      await direct?.close();
      await file?.abort();
      throw await fileSystemError(error, path, { bytesNeeded: layout?.totalSize });
    }
  };
  let ending: Promise<void> | undefined;
  /** Ends direct writing (a write out of file order, or commit): what it staged is written; later writes and reads go through the page cache. */
  const endDirect = (): Promise<void> => {
    const d = direct;
    if (!d) return Promise.resolve();
    // Once: every caller, the second one included, waits until the staged bytes are in the file.
    ending ??= guard(() => d.finish());
    return ending;
  };

  return {
    path,
    get layout() {
      return layout;
    },
    fileOffsetOf(name, offset) {
      const t = planned.get(name);
      return layout && t ? layout.dataStart + t.dataOffset + offset : undefined;
    },
    get writingDirect() {
      return direct?.open === true && direct.direct;
    },
    get wroteDirect() {
      return direct?.direct === true;
    },
    async begin(descriptors, metadata = {}) {
      if (file) throw new TensorIoError("SINK_ALREADY_BEGUN", `${path}: begin() called twice`, { file: path });
      layout = planSafetensorsLayout(descriptors, metadata, path);
      for (const d of descriptors) planned.set(d.name, { descriptor: d, dataOffset: layout.offsets.get(d.name)!, written: 0 });
      file = await createAtomicFile(path, options);
      const l = layout;
      const f = file;
      await guard(async () => {
        // With metadata still to come, the tap sees the file only once it is finished (see commit).
        if (options.tap && !options.finalMetadata) {
          await options.tap.start?.({ size: l.totalSize, head: l.headerBytes });
          tap = orderedTap(options.tap);
          await tap.write(l.headerBytes, 0);
        }
        const wanted = options.directWrites ?? "auto";
        if (wanted === true || (wanted === "auto" && l.totalSize >= DIRECT_MIN_BYTES)) direct = await openDirectWrites(f.tempPath, f.handle, options.directWritesOptions);
        // Reserve the full size up front so a full disk fails early, before hours of work.
        await f.handle.truncate(l.totalSize);
        if (direct) await direct.append(l.headerBytes, 0);
        else await writeFully(f.handle, l.headerBytes, 0);
      });
    },
    async write(name, bytes, offset = 0) {
      if (!file || !layout || failed) throw new TensorIoError("SINK_NOT_READY", `${path}: write() before begin() or after a failure`, { file: path });
      const t = planned.get(name);
      if (!t) throw new SafetensorsError("TENSOR_NOT_FOUND", `${path}: tensor ${JSON.stringify(name)} was not declared at begin()`, { file: path });
      if (offset < 0 || offset + bytes.byteLength > t.descriptor.byteLength) {
        throw new TensorIoError("RANGE_OUT_OF_BOUNDS", `${path}: write of ${bytes.byteLength} bytes at ${offset} overruns tensor ${JSON.stringify(name)} (${t.descriptor.byteLength} bytes)`, { file: path });
      }
      const l = layout;
      const f = file;
      const at = l.dataStart + t.dataOffset + offset;
      // In file order, the bytes are staged for a direct write (decided now, in call order);
      // out of order, direct writing ends and they go through the page cache.
      const d = direct?.open && direct.position === at ? direct : undefined;
      if (!d) await endDirect();
      const written = d ? d.append(bytes, at) : writeFully(f.handle, bytes, at);
      // The tap takes the bytes alongside the write: the caller may reuse the buffer once both resolve.
      await guard(() => Promise.all([tap?.write(bytes, at), written.then(() => f.wrote(bytes.byteLength))]));
      t.written += bytes.byteLength;
    },
    async readWritten(into, offset) {
      if (!file || failed) throw new TensorIoError("SINK_NOT_READY", `${path}: readWritten() before begin() or after a failure`, { file: path });
      // While writing directly, staged bytes are not in the file yet: the direct writes read them back.
      const d = direct?.open ? direct : undefined;
      if (d) {
        await guard(() => d.read(into, offset));
        return into;
      }
      await readFully(file.handle, into, 0, into.byteLength, offset, path);
      return into;
    },
    async commit() {
      if (!file || failed) throw new TensorIoError("SINK_NOT_READY", `${path}: commit() before begin() or after a failure`, { file: path });
      for (const t of planned.values()) {
        if (t.written !== t.descriptor.byteLength) {
          await direct?.close();
          await file.abort();
          throw new TensorIoError("SINK_INCOMPLETE", `${path}: tensor ${JSON.stringify(t.descriptor.name)} got ${t.written} of ${t.descriptor.byteLength} bytes; output discarded`, { file: path });
        }
      }
      await endDirect();
      const { finalMetadata, tap: outputTap, verify } = options;
      if (!finalMetadata) return file.commit(verify ? { verify: (handle) => verify(handle, layout!) } : {});
      const f = file;
      const reserved = layout!;
      const final = await guard(async () => {
        const header = planSafetensorsLayout([...planned.values()].map((t) => t.descriptor), await finalMetadata(), path, { dataStart: reserved.dataStart });
        await writeFully(f.handle, header.headerBytes, 0);
        return header;
      });
      if (!outputTap && !verify) return f.commit();
      await f.commit({
        verify: async (handle) => {
          if (outputTap) await readBackToTap(outputTap, handle, final, path, options, direct?.direct ? f.tempPath : undefined);
          await verify?.(handle, final);
        },
      });
    },
    async abort() {
      failed = true;
      await direct?.close();
      await file?.abort();
    },
  };
}

export interface InMemoryTensor {
  readonly name: string;
  readonly dtype: TensorDescriptor["dtype"];
  readonly shape: readonly number[];
  readonly data: Uint8Array;
}

/** Convenience for small outputs and tests: writes tensors held in memory as one safetensors file. */
export async function writeSafetensors(path: string, tensors: readonly InMemoryTensor[], metadata: Readonly<Record<string, string>> = {}, options: SafetensorsWriterOptions = {}): Promise<void> {
  const sink = createSafetensorsWriter(path, options);
  await sink.begin(
    tensors.map((t) => ({ name: t.name, dtype: t.dtype, shape: t.shape, byteLength: t.data.byteLength })),
    metadata,
  );
  try {
    for (const t of tensors) await sink.write(t.name, t.data);
  } catch (error) {
    await sink.abort();
    throw error;
  }
  await sink.commit();
}
