import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { startEvalWorker, type ProgressCallback } from "@stmerge/core-tensors";

/** Streaming SHA-256 of a whole file in 8 MiB reads on the calling thread; memory stays constant. */
export async function sha256File(path: string, onProgress?: ProgressCallback): Promise<string> {
  const handle = await open(path, "r");
  try {
    const total = (await handle.stat()).size;
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
    return hash.digest("hex");
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
  const total = fstatSync(fd).size;
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
  parentPort.postMessage({ done, total, digest: hash.digest("hex") });
} finally {
  closeSync(fd);
}
`;

/**
 * SHA-256 of a whole file on a worker thread, so hashing overlaps with the conversion running on
 * the main thread instead of adding a full pass before it.
 */
export function sha256FileInWorker(path: string, onProgress?: ProgressCallback, signal?: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const worker = startEvalWorker(WORKER_SOURCE, { workerData: { path } });
    // An interrupted conversion stops the worker too, so nothing keeps the process alive.
    const stop = () => void worker.terminate();
    signal?.addEventListener("abort", stop, { once: true });
    worker.on("exit", () => signal?.removeEventListener("abort", stop));
    let digest: string | undefined;
    worker.on("message", (m: { done: number; total: number; digest?: string }) => {
      onProgress?.({ phase: "hash", bytesDone: m.done, bytesTotal: m.total });
      if (m.digest) digest = m.digest;
    });
    worker.on("error", reject);
    worker.on("exit", (code) => (digest ? resolve(digest) : reject(new Error(`${path}: hashing worker exited with code ${code}`))));
  });
}
