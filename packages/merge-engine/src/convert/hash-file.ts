import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { startEvalWorker, type ProgressCallback } from "@stmerge/core-tensors";

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

/** `sha256File` with the size and mtime the file had when opened. */
export async function hashFileOnThisThread(path: string, onProgress?: ProgressCallback): Promise<HashedFile> {
  const handle = await open(path, "r");
  try {
    const opened = await handle.stat();
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
  parentPort.postMessage({ done, total, digest: hash.digest("hex"), mtimeMs: opened.mtimeMs });
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

/** `sha256FileInWorker` with the size and mtime the file had when the worker opened it. */
export function hashFileInWorker(path: string, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<HashedFile> {
  return new Promise((resolve, reject) => {
    const worker = startEvalWorker(WORKER_SOURCE, { workerData: { path } });
    // An interrupted conversion stops the worker too, so nothing keeps the process alive.
    const stop = () => void worker.terminate();
    signal?.addEventListener("abort", stop, { once: true });
    worker.on("exit", () => signal?.removeEventListener("abort", stop));
    let hashed: HashedFile | undefined;
    worker.on("message", (m: { done: number; total: number; digest?: string; mtimeMs?: number }) => {
      onProgress?.({ phase: "hash", bytesDone: m.done, bytesTotal: m.total });
      if (m.digest) hashed = { sha256: m.digest, size: m.total, mtimeMs: m.mtimeMs! };
    });
    worker.on("error", reject);
    worker.on("exit", (code) => (hashed ? resolve(hashed) : reject(new Error(`${path}: hashing worker exited with code ${code}`))));
  });
}
