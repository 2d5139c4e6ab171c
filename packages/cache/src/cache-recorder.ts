import { resolve } from "node:path";
import { applyCachePuts } from "./apply-cache-puts.js";
import { buildCacheEntry } from "./build-cache-entry.js";
import { lookupIn, statFile, type CacheLookup } from "./cache-lookup.js";
import { CacheError, type CacheDocument, type CacheEntry, type PathRecord } from "./cache-schema.js";
import type { CachePut, CacheStore } from "./cache-store.js";
import type { FileHashes } from "./hash-algorithms.js";

export interface CacheRecorderOptions {
  /** Pending records are written once there are this many; default 16. */
  flushEvery?: number;
  /** ...or once the oldest pending record waited this long; default 2000 ms. */
  flushIntervalMs?: number;
  /**
   * A write that fails (read-only disk, lock held elsewhere) is passed here once with how many
   * records it held, and later records are not written; without it the flush throws and the
   * records stay pending for the next one.
   */
  onWriteError?: (error: Error, records: number) => void;
  /**
   * Schedules the timed flush (`run` resolves when its write is done) and returns a function that
   * cancels it; default an unref'd `setTimeout`. Tests pass their own to fire it when they
   * choose, not after real time.
   */
  schedule?: (run: () => Promise<void>, ms: number) => () => void;
}

function scheduleTimeout(run: () => Promise<void>, ms: number): () => void {
  const timer = setTimeout(() => void run(), ms).unref();
  return () => clearTimeout(timer);
}

function copyOf(doc: CacheDocument): CacheDocument {
  return { ...doc, models: { ...doc.models }, paths: { ...doc.paths } };
}

/**
 * Records many files (a batch's outputs and sources) with one locked, atomic write per batch of
 * records instead of one per file. Records go to a private view of the cache at once (so look-ups
 * through the recorder see them) and to the file at the next flush: every `flushEvery` records,
 * `flushIntervalMs` after the oldest pending one, and on `flush()`, which the caller runs at the
 * end and on interrupt so finished work is kept. Each write is the store's own `put` (lock, merge
 * with what other processes wrote, temp file, fsync, rename), so concurrent writers lose nothing.
 */
export class CacheRecorder {
  readonly #store: CacheStore;
  readonly #flushEvery: number;
  readonly #flushIntervalMs: number;
  readonly #onWriteError: CacheRecorderOptions["onWriteError"];
  readonly #schedule: NonNullable<CacheRecorderOptions["schedule"]>;
  #view: CacheDocument;
  #pending: CachePut[] = [];
  #cancelTimer: (() => void) | undefined;
  #writing: Promise<void> = Promise.resolve();
  #failed = false;
  #writes = 0;

  private constructor(store: CacheStore, snapshot: CacheDocument, options: CacheRecorderOptions) {
    this.#store = store;
    this.#view = copyOf(snapshot);
    this.#flushEvery = Math.max(1, options.flushEvery ?? 16);
    this.#flushIntervalMs = Math.max(0, options.flushIntervalMs ?? 2000);
    this.#onWriteError = options.onWriteError;
    this.#schedule = options.schedule ?? scheduleTimeout;
  }

  /** A recorder on `store`, starting from one read of it. */
  static async open(store: CacheStore, options: CacheRecorderOptions = {}): Promise<CacheRecorder> {
    return new CacheRecorder(store, await store.read(), options);
  }

  /** Records not written yet. */
  get pending(): number {
    return this.#pending.length;
  }

  /** Locked writes made so far. */
  get writes(): number {
    return this.#writes;
  }

  /** The cache's answer for a file as this recorder sees it (the cache plus what it recorded). */
  async lookup(path: string): Promise<CacheLookup> {
    const abs = resolve(path);
    const info = await statFile(abs);
    return lookupIn(this.#view, abs, info?.size, info?.mtimeMs);
  }

  /**
   * The record of this very path as this recorder sees it (the cache plus what it recorded);
   * never the legacy file-name match `lookup` may fall back to.
   */
  pathRecord(path: string): PathRecord | undefined {
    return this.#view.paths[resolve(path)];
  }

  /**
   * Records a file whose hashes are known, as `ModelCache.record` does, for the next write.
   * `replaces`: the SHA-256 the path held before (a file written over another); that entry goes
   * when no path points at it any more. `hashedAs`: the size and mtime the file had when it was
   * hashed (checked unchanged by the hasher); recorded instead of the file's current ones, so a
   * file replaced between its hashing and this record looks stale (as `identify` records hashes).
   */
  async record(path: string, options: { hashes: FileHashes; extra?: Partial<CacheEntry>; replaces?: string; hashedAs?: { readonly size: number; readonly mtimeMs: number } }): Promise<CacheEntry> {
    const abs = resolve(path);
    const sha256 = options.hashes.sha256?.toLowerCase();
    if (!sha256) throw new CacheError("CACHE_UNWRITABLE", `${abs}: no SHA-256 to record the file under`, { file: abs });
    const info = options.hashedAs ?? (await statFile(abs));
    if (!info) throw new CacheError("FILE_NOT_FOUND", `${abs}: no such file`, { file: abs });
    const entry = await buildCacheEntry(abs, options.hashes, info.size, info.mtimeMs, this.#view.models[sha256], options.extra);
    const put: CachePut = { entry, path: abs, pathRecord: { sha256: entry.sha256, file_size: info.size, mtime_ms: info.mtimeMs }, ...(options.replaces ? { replaces: options.replaces } : {}) };
    applyCachePuts(this.#view, [put]);
    this.#pending.push(put);
    if (this.#pending.length >= this.#flushEvery) await this.flush();
    else this.#cancelTimer ??= this.#schedule(() => this.flush().catch(() => undefined), this.#flushIntervalMs);
    return entry;
  }

  /** Writes the pending records (one locked write); writes run one at a time, in order. */
  flush(): Promise<void> {
    const run = this.#writing.catch(() => undefined).then(() => this.#write());
    this.#writing = run;
    return run;
  }

  async #write(): Promise<void> {
    this.#cancelTimer?.();
    this.#cancelTimer = undefined;
    if (this.#pending.length === 0) return;
    const batch = this.#pending.splice(0);
    if (this.#failed) return;
    try {
      await this.#store.put(batch);
      this.#writes++;
    } catch (error) {
      if (!this.#onWriteError) {
        this.#pending.unshift(...batch);
        throw error;
      }
      this.#failed = true;
      this.#onWriteError(error as Error, batch.length);
      return;
    }
    // Take in what other processes wrote meanwhile, so later records keep their fields.
    this.#view = copyOf(await this.#store.read());
    applyCachePuts(this.#view, this.#pending);
  }
}
