import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { fileIdentityOf, sameFileIdentity, startEvalWorker, type FileIdentity, type ProgressCallback } from "@stmerge/core-tensors";
import { ConvertError } from "./convert-error.js";

/** A file's SHA-256 with the size and mtime of the file it was read from, as opened (what a cache records it under). */
export interface HashedFile {
  readonly sha256: string;
  readonly size: number;
  readonly mtimeMs: number;
}

/** Streaming SHA-256 of a whole file in 8 MiB reads on the calling thread; memory stays constant. */
export async function sha256File(path: string, onProgress?: ProgressCallback): Promise<string> {
  return (await hashFileOnThisThread(path, onProgress)).sha256;
}

/**
 * The file the path named when hashed is not the one `opened` describes (renamed over, rewritten),
 * or it changed while it was read: its digest would be another file's.
 */
function inputChanged(path: string): ConvertError {
  return new ConvertError("CONVERT_SOURCE_CHANGED", `${path}: changed while it was being converted (size or modification time); its output was removed, convert it again`, { file: path });
}

/**
 * `sha256File` with the size and mtime the file had when opened. `opened`: the identity of the
 * file the converter reads (its source's `fileIdentity`); a path that now names another file, or
 * a file that changes while hashed, is refused (`CONVERT_SOURCE_CHANGED`, as convert-folder names it).
 */
export async function hashFileOnThisThread(path: string, onProgress?: ProgressCallback, opened_?: FileIdentity): Promise<HashedFile> {
  const handle = await open(path, "r");
  try {
    const opened = await handle.stat();
    if (opened_ && !sameFileIdentity(opened_, fileIdentityOf(opened))) throw inputChanged(path);
    const total = opened.size;
    const hash = createHash("sha256");
    const buffer = new Uint8Array(8 << 20);
    let done = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
      onProgress?.({ phase: "hash", bytesDone: done, bytesTotal: total });
    }
    const after = await handle.stat();
    if (done !== total || after.size !== total || after.mtimeMs !== opened.mtimeMs) throw inputChanged(path);
    return { sha256: hash.digest("hex"), size: total, mtimeMs: opened.mtimeMs };
  } finally {
    await handle.close();
  }
}

// Inline worker source (works from the bundled CLI, which has no separate worker file).
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { openSync, readSync, fstatSync, closeSync } = require("node:fs");
const { createHash } = require("node:crypto");
const fd = openSync(workerData.path, "r");
try {
  const opened = fstatSync(fd);
  const total = opened.size;
  parentPort.postMessage({ identity: { dev: opened.dev, ino: opened.ino, size: opened.size, mtimeMs: opened.mtimeMs } });
  const hash = createHash("sha256");
  const buffer = Buffer.allocUnsafe(8 << 20);
  let done = 0, reported = 0;
  for (;;) {
    const n = readSync(fd, buffer, 0, buffer.length, done);
    if (n === 0) break;
    hash.update(buffer.subarray(0, n));
    done += n;
    if (done - reported >= (256 << 20)) { reported = done; parentPort.postMessage({ done, total }); }
  }
  const after = fstatSync(fd);
  const unchanged = done === total && after.size === total && after.mtimeMs === opened.mtimeMs;
  parentPort.postMessage({ done, total, digest: unchanged ? hash.digest("hex") : undefined, changed: !unchanged, mtimeMs: opened.mtimeMs });
} finally {
  closeSync(fd);
}
`;

/**
 * SHA-256 of a whole file on a worker thread, so hashing overlaps with the conversion running on
 * the main thread instead of adding a full pass before it.
 */
export async function sha256FileInWorker(path: string, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<string> {
  return (await hashFileInWorker(path, onProgress, signal)).sha256;
}

/** `sha256FileInWorker` with the size and mtime the file had when the worker opened it; `opened` as for `hashFileOnThisThread`. */
export function hashFileInWorker(path: string, onProgress?: ProgressCallback, signal?: AbortSignal, opened?: FileIdentity): Promise<HashedFile> {
  return new Promise((resolve, reject) => {
    const worker = startEvalWorker(WORKER_SOURCE, { workerData: { path } });
    // An interrupted conversion stops the worker too, so nothing keeps the process alive.
    const stop = () => void worker.terminate();
    signal?.addEventListener("abort", stop, { once: true });
    worker.on("exit", () => signal?.removeEventListener("abort", stop));
    let hashed: HashedFile | undefined;
    let changed = false;
    worker.on("message", (m: { identity?: FileIdentity; done?: number; total?: number; digest?: string; changed?: boolean; mtimeMs?: number }) => {
      if (m.identity) {
        // Another file under the path: stop before hashing it.
        if (opened && !sameFileIdentity(opened, m.identity)) {
          changed = true;
          void worker.terminate();
        }
        return;
      }
      onProgress?.({ phase: "hash", bytesDone: m.done!, bytesTotal: m.total! });
      if (m.changed) changed = true;
      if (m.digest) hashed = { sha256: m.digest, size: m.total!, mtimeMs: m.mtimeMs! };
    });
    worker.on("error", reject);
    worker.on("exit", (code) => (changed ? reject(inputChanged(path)) : hashed ? resolve(hashed) : reject(new Error(`${path}: hashing worker exited with code ${code}`))));
  });
}
