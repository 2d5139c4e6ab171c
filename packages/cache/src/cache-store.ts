import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { CacheDocument, CacheEntry, PathRecord } from "./cache-schema.js";

/** Something the cache noticed and the caller may want to show (the library never prints). */
export interface CacheWarning {
  readonly code: "CACHE_CORRUPT_MOVED" | "CACHE_MIGRATED" | "CACHE_STALE_LOCK";
  readonly message: string;
  readonly file: string;
  /** Where a corrupt file was moved. */
  readonly backup?: string;
}

export type CacheWarningCallback = (warning: CacheWarning) => void;

/** An entry to store, with the path it was found at. */
export interface CachePut {
  entry: CacheEntry;
  path?: string;
  pathRecord?: PathRecord;
  /**
   * SHA-256 of the entry this path held before (a file written over another): that entry is
   * removed in the same write once no path points at it any more.
   */
  replaces?: string;
}

/**
 * The storage behind the metadata cache. The JSON file store is the default; another backend
 * (SQLite, a server) implements the same operations. Writes are atomic and safe against
 * concurrent stmerge processes.
 */
export interface CacheStore {
  /** Where the cache lives (a file path for the JSON store). */
  readonly location: string;
  /** A consistent snapshot of everything (one read for batch operations). */
  read(): Promise<CacheDocument>;
  getByHash(sha256: string): Promise<CacheEntry | undefined>;
  getPathRecord(absPath: string): Promise<PathRecord | undefined>;
  entries(): Promise<CacheEntry[]>;
  pathRecords(): Promise<[string, PathRecord][]>;
  /** Upserts entries: fields given replace stored ones, fields left undefined are kept. */
  put(items: readonly CachePut[]): Promise<void>;
  /** Changes fields of an existing entry; false when there is no such entry. */
  patch(sha256: string, fields: Partial<CacheEntry>): Promise<boolean>;
  /** Removes entries and every path pointing at them; returns how many entries went. */
  removeEntries(sha256s: readonly string[]): Promise<number>;
  /** Removes path records; returns how many went. */
  removePaths(paths: readonly string[]): Promise<number>;
  /** Removes everything; returns how many entries went. */
  clear(): Promise<number>;
  /** Bytes the store takes on disk (0 when absent). */
  sizeOnDisk(): Promise<number>;
}

/** `--cache-file`, else `STMERGE_CACHE`, else `~/.model_merger/model_cache.json` (the Python tool's location). */
export function resolveCachePath(explicit?: string, env: NodeJS.ProcessEnv = process.env): string {
  if (explicit) return resolve(explicit);
  if (env.STMERGE_CACHE) return resolve(env.STMERGE_CACHE);
  return join(homedir(), ".model_merger", "model_cache.json");
}
