import { availableParallelism } from "node:os";
import type { FileHandle } from "node:fs/promises";
import { crc32Implementation, openFileForRead, readFully, TensorIoError, type ProgressCallback } from "@stmerge/core-tensors";
import { blake3Backend, wasmHashModulePath, type Blake3Backend } from "./blake3.js";
import {
  AUTOV1_LENGTH,
  AUTOV1_MIN_FILE_SIZE,
  AUTOV1_OFFSET,
  AUTOV3_LENGTH,
  HASH_ALGORITHMS,
  HashError,
  autoV3Start,
  formatCrc32Civitai,
  type FileHashes,
  type HashAlgorithm,
} from "./hash-algorithms.js";
import { assignLanes, HASH_CHUNK_BYTES, LaneFeeder, startHashLanes } from "./hash-lanes.js";
import { createRangeHasher, type RangeHasherSpec } from "./range-hashers.js";

export interface HashFileOptions {
  /** Which hashes to compute; default all six. */
  algorithms?: readonly HashAlgorithm[];
  onProgress?: ProgressCallback;
  /** Bytes per positioned read; default 16 MiB. */
  chunkSize?: number;
  /**
   * Worker threads for the digests: "auto" (default) uses the available cores when at least two
   * full-file digests run over a file of 64 MiB or more; 1 hashes on the calling thread.
   */
  threads?: "auto" | number;
  /** BLAKE3 implementation; "auto" prefers the native prebuilt. */
  blake3?: Blake3Backend | "auto";
  signal?: AbortSignal;
}

export interface FileHashResult {
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly hashes: FileHashes;
  /** Bytes actually read (hashes that need only a window read only that window). */
  readonly bytesRead: number;
}

const LANES_MIN_BYTES = 64 * 1024 * 1024;

/** Merged, sorted byte intervals that the hashers need. */
function readIntervals(specs: readonly RangeHasherSpec[]): [number, number][] {
  const sorted = specs.filter((s) => s.end > s.start).map((s) => [s.start, s.end] as [number, number]).sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

function* chunksOf(intervals: [number, number][], chunkSize: number): Generator<{ offset: number; length: number }> {
  for (const [s, e] of intervals) for (let o = s; o < e; o += chunkSize) yield { offset: o, length: Math.min(chunkSize, e - o) };
}

/** The range digests the requested hashes need, for a file of `size` bytes. */
export function planHashers(algorithms: readonly HashAlgorithm[], size: number, v3Start: number | undefined): RangeHasherSpec[] {
  const specs: RangeHasherSpec[] = [];
  if (algorithms.includes("sha256") || algorithms.includes("autov2")) specs.push({ id: "sha256", kind: "sha256", start: 0, end: size });
  if (algorithms.includes("autov1") && size >= AUTOV1_MIN_FILE_SIZE) specs.push({ id: "autov1", kind: "sha256", start: AUTOV1_OFFSET, end: AUTOV1_OFFSET + AUTOV1_LENGTH });
  if (algorithms.includes("autov3") && v3Start !== undefined) specs.push({ id: "autov3", kind: "sha256", start: v3Start, end: size });
  if (algorithms.includes("crc32")) specs.push({ id: "crc32", kind: "crc32", start: 0, end: size });
  if (algorithms.includes("blake3")) specs.push({ id: "blake3", kind: "blake3", start: 0, end: size });
  return specs;
}

/** Whether worker lanes can run these digests here (a worker must be able to load what they need). */
export function lanesSupported(specs: RangeHasherSpec[], backend: Blake3Backend): boolean {
  const needsWasm = specs.some((s) => (s.kind === "blake3" && backend === "wasm") || (s.kind === "crc32" && crc32Implementation() === "table"));
  return !needsWasm || wasmHashModulePath() !== undefined;
}

export function resolveThreads(threads: HashFileOptions["threads"], specs: RangeHasherSpec[], bytes: number): number {
  const heavy = specs.filter((s) => s.end - s.start >= LANES_MIN_BYTES / 4).length;
  if (threads === undefined || threads === "auto") {
    if (bytes < LANES_MIN_BYTES || heavy < 2) return 1;
    return Math.max(1, Math.min(availableParallelism(), heavy));
  }
  return Math.max(1, Math.floor(threads));
}

/**
 * Computes every requested hash from one streaming pass of positioned reads, the digests
 * side by side (on worker threads for large files), the next read in flight while the current
 * chunk is hashed. Throws `HASH_FILE_CHANGED` if the file changes size or mtime meanwhile.
 */
export async function hashFile(path: string, options: HashFileOptions = {}): Promise<FileHashResult> {
  const algorithms = options.algorithms ?? HASH_ALGORITHMS;
  const chunkSize = Math.max(64 * 1024, options.chunkSize ?? HASH_CHUNK_BYTES);
  const { handle, stats: before } = await openFileForRead(path);
  try {
    const size = before.size;
    const prefix = new Uint8Array(8);
    if (algorithms.includes("autov3") && size >= 8) await readFully(handle, prefix, 0, 8, 0, path);
    const specs = planHashers(algorithms, size, autoV3Start(prefix, size));
    const intervals = readIntervals(specs);
    const totalBytes = intervals.reduce((n, [s, e]) => n + e - s, 0);
    const backend = blake3Backend(options.blake3 ?? "auto");
    const threads = lanesSupported(specs, backend) ? resolveThreads(options.threads, specs, totalBytes) : 1;
    const digests = threads > 1
      ? await hashWithLanes(path, handle, specs, intervals, chunkSize, threads, backend, totalBytes, options)
      : await hashInline(path, handle, specs, intervals, chunkSize, backend, totalBytes, options);
    const after = await handle.stat();
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
      throw new HashError("HASH_FILE_CHANGED", `${path}: file changed while it was being hashed`, { file: path });
    }
    return { path, size, mtimeMs: before.mtimeMs, hashes: formatHashes(algorithms, digests, size), bytesRead: totalBytes };
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/** The requested hashes as the cache and CivitAI print them, from the range digests. */
export function formatHashes(algorithms: readonly HashAlgorithm[], digests: Map<string, string>, size: number): FileHashes {
  const out: FileHashes = {};
  const sha = digests.get("sha256");
  for (const algorithm of algorithms) {
    switch (algorithm) {
      case "sha256":
        out.sha256 = sha ?? null;
        break;
      case "autov2":
        out.autov2 = sha ? sha.slice(0, 10).toUpperCase() : null;
        break;
      case "autov1": {
        const v = digests.get("autov1");
        out.autov1 = v && size >= AUTOV1_MIN_FILE_SIZE ? v.slice(0, 8).toUpperCase() : null;
        break;
      }
      case "autov3": {
        const v = digests.get("autov3");
        out.autov3 = v ? v.slice(0, AUTOV3_LENGTH).toUpperCase() : null;
        break;
      }
      case "crc32": {
        const v = digests.get("crc32");
        out.crc32 = v ? formatCrc32Civitai(Number.parseInt(v, 16)) : null;
        break;
      }
      case "blake3":
        out.blake3 = digests.get("blake3") ?? null;
        break;
    }
  }
  return out;
}

function checkAbort(signal: AbortSignal | undefined, path: string): void {
  if (signal?.aborted) throw new HashError("HASH_ABORTED", `${path}: hashing was cancelled`, { file: path });
}

async function hashInline(
  path: string,
  handle: FileHandle,
  specs: RangeHasherSpec[],
  intervals: [number, number][],
  chunkSize: number,
  backend: Blake3Backend,
  totalBytes: number,
  options: HashFileOptions,
): Promise<Map<string, string>> {
  const hashers = await Promise.all(specs.map((s) => createRangeHasher(s, backend)));
  const chunks = [...chunksOf(intervals, chunkSize)];
  const size = Math.min(chunkSize, Math.max(1, totalBytes));
  const buffers = [new Uint8Array(size), new Uint8Array(size)];
  let done = 0;
  let pending: Promise<void> | undefined;
  const readInto = (i: number): Promise<void> => {
    const c = chunks[i]!;
    return readFully(handle, buffers[i % 2]!, 0, c.length, c.offset, path);
  };
  if (chunks.length > 0) pending = readInto(0);
  for (let i = 0; i < chunks.length; i++) {
    await pending;
    checkAbort(options.signal, path);
    // The next read runs in libuv's pool while this thread hashes the current chunk.
    pending = i + 1 < chunks.length ? readInto(i + 1) : undefined;
    pending?.catch(() => undefined);
    const c = chunks[i]!;
    const view = buffers[i % 2]!.subarray(0, c.length);
    for (const h of hashers) h.feed(view, c.offset);
    done += c.length;
    options.onProgress?.({ phase: "hash", bytesDone: done, bytesTotal: totalBytes });
  }
  const digests = new Map<string, string>();
  for (const h of hashers) digests.set(h.spec.id, h.digest());
  return digests;
}

async function hashWithLanes(
  path: string,
  handle: FileHandle,
  specs: RangeHasherSpec[],
  intervals: [number, number][],
  chunkSize: number,
  threads: number,
  backend: Blake3Backend,
  totalBytes: number,
  options: HashFileOptions,
): Promise<Map<string, string>> {
  const lanes = await startHashLanes(path, assignLanes(specs, threads, backend), 3, chunkSize, backend);
  try {
    const feeder = new LaneFeeder(lanes);
    let done = 0;
    const hashed = (bytes: number): void => {
      done += bytes;
      options.onProgress?.({ phase: "hash", bytesDone: done, bytesTotal: totalBytes });
    };
    for (const c of chunksOf(intervals, chunkSize)) {
      if (feeder.failure) throw feeder.failure;
      checkAbort(options.signal, path);
      await feeder.fill(c.offset, c.length, async (into) => void (await readFully(handle, into, 0, c.length, c.offset, path)), hashed);
    }
    await feeder.drain();
    if (feeder.failure) throw feeder.failure;
    return await lanes.finish();
  } finally {
    await lanes.close();
  }
}
