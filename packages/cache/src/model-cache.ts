import { basename, resolve } from "node:path";
import type { ProgressCallback } from "@stmerge/core-tensors";
import { lookupIn, statFile, type CacheLookup } from "./cache-lookup.js";
import { buildCacheEntry } from "./build-cache-entry.js";
import { CacheRecorder, type CacheRecorderOptions } from "./cache-recorder.js";
import { HASH_ALGORITHMS, type FileHashes, type HashAlgorithm } from "./hash-algorithms.js";
import { hashFile } from "./hash-file.js";
import { CacheError, type CacheDocument, type CacheEntry, type PathRecord } from "./cache-schema.js";
import { resolveCachePath, type CachePut, type CacheStore, type CacheWarningCallback } from "./cache-store.js";
import { JsonCacheStore } from "./json-cache-store.js";
import type { CacheLockOptions } from "./cache-lock.js";
import { cacheInfo, verifyCache, type CacheInfo, type CacheVerifyReport } from "./verify-cache.js";

export interface OpenModelCacheOptions {
  /** Cache file (`--cache-file`); default from `STMERGE_CACHE` or `~/.model_merger/model_cache.json`. */
  path?: string;
  env?: NodeJS.ProcessEnv;
  /** Another backend instead of the JSON file. */
  store?: CacheStore;
  onWarning?: CacheWarningCallback;
  lock?: CacheLockOptions;
}

export interface IdentifyOptions {
  /** Hashes wanted; default all six. SHA-256 is always computed (it is the key). */
  algorithms?: readonly HashAlgorithm[];
  /** Re-hash even when the cache is valid. */
  force?: boolean;
  /** Bytes hashed within the current file; `detail` is the file. */
  onProgress?: ProgressCallback;
  /** Called once per file when it is done. */
  onFile?: (result: IdentifyResult, index: number, total: number) => void;
  /** Fields to store with every new or re-hashed entry (e.g. an architecture the caller detected). */
  extra?: Partial<CacheEntry>;
  /**
   * New entries are written once this many are pending and `flushIntervalMs` has passed since the
   * last write (so an interrupted run keeps its work without a locked write per small file); default 8.
   */
  flushEvery?: number;
  /** Default 2000 ms. */
  flushIntervalMs?: number;
  threads?: "auto" | number;
  /** Aborts between chunks; files finished before the abort are still written to the cache. */
  signal?: AbortSignal;
  /**
   * A cache write that fails (read-only disk, missing folder, lock held elsewhere) is passed here
   * once, no further write is tried, and the hashes are still returned; without it the error is thrown.
   */
  onWriteError?: (error: Error) => void;
}

export interface IdentifyResult {
  readonly path: string;
  readonly entry: CacheEntry;
  /** True when the cache answered without hashing. */
  readonly fromCache: boolean;
}

/** Hex digits a hash prefix needs to be looked up (shorter ones match too much to mean one file). */
export const MIN_HASH_PREFIX = 6;

function hasAll(entry: CacheEntry, algorithms: readonly HashAlgorithm[]): boolean {
  return algorithms.every((a) => a === "sha256" || a === "autov2" || entry[a] !== undefined);
}

/**
 * What stmerge remembers about model files: hashes, precision, architecture and CivitAI data,
 * keyed by SHA-256, found by path while the file's size and mtime are unchanged.
 */
export class ModelCache {
  constructor(readonly store: CacheStore) {}

  get location(): string {
    return this.store.location;
  }

  async lookup(path: string): Promise<CacheLookup> {
    return (await this.lookupMany([path]))[0]!;
  }

  async lookupMany(paths: readonly string[]): Promise<CacheLookup[]> {
    const doc = await this.store.read();
    return Promise.all(
      paths.map(async (p) => {
        const abs = resolve(p);
        const info = await statFile(abs);
        return lookupIn(doc, abs, info?.size, info?.mtimeMs);
      }),
    );
  }

  /**
   * Hashes and records each file unless the cache already knows it as it is now. One read of
   * the cache for the whole batch; new entries are written in batches under the lock.
   */
  async identify(paths: readonly string[], options: IdentifyOptions = {}): Promise<IdentifyResult[]> {
    const algorithms = [...new Set<HashAlgorithm>(["sha256", ...(options.algorithms ?? HASH_ALGORITHMS)])];
    const flushEvery = Math.max(1, options.flushEvery ?? 8);
    const flushIntervalMs = Math.max(0, options.flushIntervalMs ?? 2000);
    // A private view of the snapshot: this batch's results are added to it as it goes.
    const snapshot = await this.store.read();
    const doc = { ...snapshot, models: { ...snapshot.models }, paths: { ...snapshot.paths } };
    const results: IdentifyResult[] = [];
    const pending: CachePut[] = [];
    let lastFlush = Date.now();
    let writeFailed = false;
    const flush = async () => {
      lastFlush = Date.now();
      if (pending.length === 0) return;
      const batch = pending.splice(0);
      if (writeFailed) return;
      try {
        await this.store.put(batch);
      } catch (error) {
        if (!options.onWriteError) throw error;
        writeFailed = true;
        options.onWriteError(error as Error);
      }
    };
    try {
      await this.#identifyEach(paths, options, algorithms, doc, results, pending, async () => {
        if (pending.length >= flushEvery && Date.now() - lastFlush >= flushIntervalMs) await flush();
      });
    } catch (error) {
      // Work finished before an interrupt is kept: the files already hashed go to the cache.
      if (options.signal?.aborted) await flush().catch(() => undefined);
      throw error;
    }
    await flush();
    return results;
  }

  async #identifyEach(
    paths: readonly string[],
    options: IdentifyOptions,
    algorithms: HashAlgorithm[],
    doc: CacheDocument,
    results: IdentifyResult[],
    pending: CachePut[],
    maybeFlush: () => Promise<void>,
  ): Promise<void> {
    for (let i = 0; i < paths.length; i++) {
      const path = resolve(paths[i]!);
      const info = await statFile(path);
      const found = lookupIn(doc, path, info?.size, info?.mtimeMs);
      let result: IdentifyResult;
      if (!options.force && found.status === "fresh" && found.entry && hasAll(found.entry, algorithms)) {
        result = { path, entry: found.entry, fromCache: true };
        if (!doc.paths[path]) pending.push({ entry: found.entry, path, pathRecord: { sha256: found.entry.sha256, file_size: info!.size, mtime_ms: info!.mtimeMs } });
      } else {
        const hashed = await hashFile(path, {
          algorithms,
          ...(options.threads !== undefined ? { threads: options.threads } : {}),
          ...(options.signal ? { signal: options.signal } : {}),
          ...(options.onProgress ? { onProgress: (e) => options.onProgress!({ ...e, detail: path }) } : {}),
        });
        const entry = await buildCacheEntry(path, hashed.hashes, hashed.size, hashed.mtimeMs, doc.models[hashed.hashes.sha256!], options.extra);
        const pathRecord: PathRecord = { sha256: entry.sha256, file_size: hashed.size, mtime_ms: hashed.mtimeMs };
        doc.models[entry.sha256] = entry;
        doc.paths[path] = pathRecord;
        pending.push({ entry, path, pathRecord });
        result = { path, entry, fromCache: false };
      }
      results.push(result);
      options.onFile?.(result, i, paths.length);
      await maybeFlush();
    }
  }

  /**
   * Records a file stmerge just wrote (a merge or convert output) whose hashes are already known
   * or are computed now, with extra fields such as the source's CivitAI data.
   */
  async record(path: string, options: { hashes?: FileHashes; extra?: Partial<CacheEntry>; algorithms?: readonly HashAlgorithm[] } = {}): Promise<CacheEntry> {
    const abs = resolve(path);
    if (!options.hashes?.sha256) {
      const [result] = await this.identify([abs], { force: true, ...(options.algorithms ? { algorithms: options.algorithms } : {}), ...(options.extra ? { extra: options.extra } : {}) });
      return result!.entry;
    }
    const info = await statFile(abs);
    if (!info) throw new CacheError("FILE_NOT_FOUND", `${abs}: no such file`, { file: abs });
    const previous = await this.store.getByHash(options.hashes.sha256);
    const entry = await buildCacheEntry(abs, options.hashes, info.size, info.mtimeMs, previous, options.extra);
    await this.store.put([{ entry, path: abs, pathRecord: { sha256: entry.sha256, file_size: info.size, mtime_ms: info.mtimeMs } }]);
    return entry;
  }

  /**
   * A recorder for many files (a batch conversion's outputs and sources): one locked write per
   * batch of records instead of one per file; the caller flushes it at the end and on interrupt.
   */
  async recorder(options: CacheRecorderOptions = {}): Promise<CacheRecorder> {
    return CacheRecorder.open(this.store, options);
  }

  /** Changes fields of an entry (CivitAI data, architecture); false when the hash is unknown. */
  async annotate(sha256: string, fields: Partial<CacheEntry>): Promise<boolean> {
    return this.store.patch(sha256, fields);
  }

  /**
   * Entries matching a query: a hash or a prefix of one (SHA-256, AutoV1/V2/V3, CRC32, BLAKE3;
   * `MIN_HASH_PREFIX` hex digits or more), a path, or a file name (exact, else substring).
   */
  async find(query: string): Promise<CacheEntry[]> {
    const doc = await this.store.read();
    const all = Object.values(doc.models);
    const q = query.trim();
    const lower = q.toLowerCase();
    if (q.length >= MIN_HASH_PREFIX && /^[0-9a-f]{1,64}$/i.test(q)) {
      const byHash = all.filter((e) => [e.sha256, e.autov1, e.autov2, e.autov3, e.crc32, e.blake3].some((h) => typeof h === "string" && h.toLowerCase().startsWith(lower)));
      if (byHash.length > 0) return byHash;
    }
    const record = doc.paths[resolve(q)];
    if (record && doc.models[record.sha256]) return [doc.models[record.sha256]!];
    const exact = all.filter((e) => e.filename === q || e.filename === basename(q));
    if (exact.length > 0) return exact;
    return all.filter((e) => e.filename.toLowerCase().includes(lower));
  }

  /** Removes the entries a query matches (see `find`); returns them. */
  async remove(query: string): Promise<CacheEntry[]> {
    const found = await this.find(query);
    if (found.length > 0) await this.store.removeEntries(found.map((e) => e.sha256));
    return found;
  }

  async clear(): Promise<number> {
    return this.store.clear();
  }

  /** Paths indexed for an entry. */
  async pathsOf(sha256: string): Promise<string[]> {
    const doc = await this.store.read();
    return Object.entries(doc.paths)
      .filter(([, r]) => r.sha256 === sha256.toLowerCase())
      .map(([p]) => p);
  }

  async info(): Promise<CacheInfo> {
    return cacheInfo(this.store);
  }

  /**
   * Checks indexed paths (all, or those under `folder`) against the files on disk. With `prune`,
   * records of missing or changed files are dropped, and entries left with no path at all.
   */
  async verify(options: { folder?: string; prune?: boolean; recurse?: boolean } = {}): Promise<CacheVerifyReport> {
    return verifyCache(this.store, options);
  }
}

/** The cache at `--cache-file`, `STMERGE_CACHE` or the default location, on the JSON store unless another is given. */
export function openModelCache(options: OpenModelCacheOptions = {}): ModelCache {
  if (options.store) return new ModelCache(options.store);
  const path = resolveCachePath(options.path, options.env);
  return new ModelCache(new JsonCacheStore(path, { ...(options.onWarning ? { onWarning: options.onWarning } : {}), ...(options.lock ? { lock: options.lock } : {}) }));
}
