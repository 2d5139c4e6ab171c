import type { ProgressCallback } from "./progress.js";
import type { TensorSource } from "./tensor-source.js";

/**
 * Something that sees the bytes of an input file as they are read, at their file offsets, in
 * whatever order the reader reads (the CLI plugs the cache's sequential hasher in here, so a merge
 * learns its inputs' digests from the reads it makes anyway; core-tensors knows nothing of hashes).
 */
export interface InputReadTap {
  /**
   * Bytes of the file at `offset`, just read. Any order, gaps and overlaps are allowed. Must not
   * keep `chunk` past its return (or past the promise it returns).
   */
  bytes(chunk: Uint8Array, offset: number): void | Promise<void>;
  /** Bytes `finish` will still read itself (what the reads so far did not cover in order). */
  readonly bytesLeft: number;
  /** Bytes it has read from the file itself so far (gaps between reads, and at `finish` the rest). */
  readonly bytesReadItself: number;
  /** Reads whatever the reads did not cover and returns the digest of the whole file. */
  finish(options?: { readonly onProgress?: ProgressCallback; readonly signal?: AbortSignal }): Promise<string>;
  /** Releases the file (after `finish`, or instead of it when the work fails). Safe to call twice. */
  close(): Promise<void>;
}

/**
 * The same source with every range read also handed to `tap` at its file offset (before the
 * bytes are returned, so the caller may reuse its buffer at once). Sources without file offsets
 * (checkpoints) are returned as they are: their tap reads the whole file at `finish`.
 */
export function tapSourceReads(source: TensorSource, tap: InputReadTap): TensorSource {
  const offsetOf = source.fileOffsetOf?.bind(source);
  if (!offsetOf) return source;
  const readRange = async (name: string, start: number, end: number, into?: Uint8Array): Promise<Uint8Array> => {
    const bytes = await source.readRange(name, start, end, into);
    await tap.bytes(bytes, offsetOf(name) + start);
    return bytes;
  };
  return {
    path: source.path,
    descriptors: source.descriptors,
    metadata: source.metadata,
    get: (name) => source.get(name),
    read: async (name, into) => readRange(name, 0, source.get(name)?.byteLength ?? 0, into),
    readRange,
    fileOffsetOf: offsetOf,
    ...(source.fileIdentity ? { fileIdentity: source.fileIdentity } : {}),
    close: () => source.close(),
  };
}
