import { createHash } from "node:crypto";
import { fileIdentityOf, openFileForRead, readFully, sameFileIdentity, throwIfAborted, type FileIdentity, type InputReadTap, type ProgressCallback } from "@stmerge/core-tensors";
import { CacheError } from "./cache-schema.js";
import { HashError } from "./hash-algorithms.js";

/**
 * A read this far ahead of the hashed prefix has the gap read and hashed at once (a skipped
 * tensor, a header); a read further ahead is left to `finish`, so no single read of the caller
 * waits on a long hidden read (`finish` reports its progress).
 */
export const GAP_FILL_MAX_BYTES = 64 * 1024 * 1024;

const READ_CHUNK = 8 * 1024 * 1024;

/** SHA-256 of a file learned from reads someone makes anyway (a merge's), plus what they skip. */
export interface SequentialFileHasher extends InputReadTap {
  readonly path: string;
  /** Size and mtime of the file when opened; `finish` checks they still hold (record them with the digest). */
  readonly size: number;
  readonly mtimeMs: number;
}

/**
 * SHA-256 of a whole file from the bytes a reader hands it, in any order: it keeps a cursor (how
 * far the file is hashed); a read starting at or before the cursor and ending past it advances it;
 * a read a little ahead first has the gap read from the file (soon in the page cache anyway); a
 * read behind the cursor, or far ahead, is ignored. `finish` hashes the rest up to the end. So any
 * read order gives the file's true SHA-256, and each byte is read by the hasher at most once
 * besides the reader's own reads. The file must not change meanwhile (checked by size and mtime).
 * `opened`: the file the reader opened (its `TensorSource.fileIdentity`); a path renamed over or
 * written since is refused (`HASH_FILE_CHANGED`), as the gaps would then be another file's bytes.
 */
export async function createSequentialFileHasher(path: string, options: { readonly gapFillMaxBytes?: number; readonly opened?: FileIdentity } = {}): Promise<SequentialFileHasher> {
  const gapFillMax = options.gapFillMaxBytes ?? GAP_FILL_MAX_BYTES;
  const { handle, stats } = await openFileForRead(path);
  if (options.opened && !sameFileIdentity(options.opened, fileIdentityOf(stats))) {
    await handle.close().catch(() => undefined);
    throw new HashError("HASH_FILE_CHANGED", `${path}: the file was replaced or changed after it was opened for reading, so its SHA-256 is unknown`, { file: path });
  }
  const hash = createHash("sha256");
  const size = stats.size;
  let cursor = 0;
  let readItself = 0;
  let digest: string | undefined;
  let closed = false;
  let buffer: Uint8Array | undefined;
  // Calls are taken one after another, in the order they were made.
  let chain: Promise<void> = Promise.resolve();

  const hashFromFile = async (from: number, to: number): Promise<void> => {
    buffer ??= new Uint8Array(READ_CHUNK);
    for (let at = from; at < to; ) {
      const length = Math.min(buffer.byteLength, to - at);
      await readFully(handle, buffer, 0, length, at, path);
      hash.update(buffer.subarray(0, length));
      at += length;
      cursor = at;
      readItself += length;
    }
  };

  const finishInTurn = async (options: { readonly onProgress?: ProgressCallback; readonly signal?: AbortSignal }): Promise<string> => {
    if (digest !== undefined) return digest;
    if (closed) throw new CacheError("HASHER_CLOSED", `${path}: hashed after close`, { file: path });
    const from = cursor;
    const report = (done: number) => options.onProgress?.({ phase: "hash", bytesDone: done, bytesTotal: size - from, detail: path });
    report(0);
    while (cursor < size) {
      throwIfAborted(options.signal, path, "hashing");
      await hashFromFile(cursor, Math.min(size, cursor + READ_CHUNK));
      report(cursor - from);
    }
    const now = await handle.stat();
    if (now.size !== size || now.mtimeMs !== stats.mtimeMs) {
      throw new HashError("HASH_FILE_CHANGED", `${path}: the file changed while it was read (size or modification time differ), so its SHA-256 is unknown`, { file: path });
    }
    digest = hash.digest("hex");
    return digest;
  };

  const take = async (chunk: Uint8Array, offset: number): Promise<void> => {
    const end = offset + chunk.byteLength;
    if (digest !== undefined || closed || end <= cursor || end > size) return;
    if (offset > cursor) {
      if (offset - cursor > gapFillMax) return;
      await hashFromFile(cursor, offset);
    }
    hash.update(chunk.subarray(cursor - offset));
    cursor = end;
  };

  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await handle.close().catch(() => undefined);
  };

  return {
    path,
    size,
    mtimeMs: stats.mtimeMs,
    get bytesLeft() {
      return size - cursor;
    },
    get bytesReadItself() {
      return readItself;
    },
    bytes(chunk, offset) {
      const taken = chain.then(() => take(chunk, offset));
      chain = taken.catch(() => undefined);
      return taken;
    },
    // In the same queue as `bytes`: a read handed over meanwhile waits (and is then ignored).
    finish(options: { readonly onProgress?: ProgressCallback; readonly signal?: AbortSignal } = {}) {
      const finished = chain.then(() => finishInTurn(options));
      chain = finished.then(
        () => undefined,
        () => undefined,
      );
      return finished;
    },
    close,
  };
}
