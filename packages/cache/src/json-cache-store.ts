import { mkdir, readFile, rename, stat } from "node:fs/promises";
import { dirname } from "node:path";
import { writeFileAtomic } from "@stmerge/core-tensors";
import { applyCachePuts, definedFields } from "./apply-cache-puts.js";
import { acquireCacheLock, type CacheLockOptions } from "./cache-lock.js";
import { CacheError, emptyCacheDocument, parseCacheDocument, type CacheDocument, type CacheEntry, type PathRecord } from "./cache-schema.js";
import type { CachePut, CacheStore, CacheWarningCallback } from "./cache-store.js";

export interface JsonCacheStoreOptions {
  lock?: CacheLockOptions;
  onWarning?: CacheWarningCallback;
}

/**
 * Parsed snapshots by cache path, keyed by the file's inode, size and mtime: a process that looks
 * up many files (scan, merge) parses the cache once, not once per file. Every write replaces the
 * file (new inode), so a stale snapshot is never served. Snapshots are shared: never mutate them.
 */
const snapshots = new Map<string, { key: string; doc: CacheDocument }>();

async function statKey(path: string): Promise<string> {
  try {
    const info = await stat(path);
    return `${info.ino}:${info.size}:${info.mtimeMs}`;
  } catch {
    return "absent";
  }
}

/**
 * The default store: one JSON file (schema v2), read whole, changed under an inter-process lock
 * (read, modify, write to a temp file, fsync, rename), so concurrent writers lose nothing.
 * A corrupt file is moved aside as `<file>.corrupt-<timestamp>` with a warning, never wiped.
 */
export class JsonCacheStore implements CacheStore {
  readonly location: string;
  readonly #lockPath: string;
  readonly #options: JsonCacheStoreOptions;

  constructor(path: string, options: JsonCacheStoreOptions = {}) {
    this.location = path;
    this.#lockPath = `${path}.lock`;
    this.#options = options;
  }

  /** The raw text, or undefined when there is no file yet. */
  async #readText(): Promise<string | undefined> {
    try {
      return await readFile(this.location, "utf8");
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      // ENOTDIR: a folder of the path is a file, so there is no cache there either.
      if (code === "ENOENT" || code === "ENOTDIR") return undefined;
      throw new CacheError("CACHE_UNREADABLE", `${this.location}: cannot read the cache (${code ?? (error as Error).message})`, { file: this.location, cause: error });
    }
  }

  /** Parses `text`; a corrupt file is moved aside only when `locked` (else reported as empty). */
  async #parse(text: string | undefined, locked: boolean): Promise<CacheDocument | "corrupt"> {
    if (text === undefined) return emptyCacheDocument();
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      return locked ? this.#moveAside(`invalid JSON: ${(error as Error).message}`) : "corrupt";
    }
    try {
      const parsed = parseCacheDocument(raw, this.location);
      if (parsed.migratedFrom !== undefined && locked) {
        this.#options.onWarning?.({ code: "CACHE_MIGRATED", file: this.location, message: `${this.location}: cache migrated from version ${parsed.migratedFrom} to ${parsed.document.version}` });
      }
      return parsed.document;
    } catch (error) {
      if (error instanceof CacheError && error.code === "CACHE_CORRUPT") return locked ? this.#moveAside(error.message) : "corrupt";
      throw error;
    }
  }

  async #moveAside(why: string): Promise<CacheDocument> {
    const stamp = new Date().toISOString().replace(/[:.]/g, "-");
    const backup = `${this.location}.corrupt-${stamp}`;
    await rename(this.location, backup);
    this.#options.onWarning?.({
      code: "CACHE_CORRUPT_MOVED",
      file: this.location,
      backup,
      message: `${this.location}: cache file was corrupt (${why}); moved it to ${backup} and started a fresh cache`,
    });
    return emptyCacheDocument();
  }

  /** A consistent snapshot (the file is only ever replaced by rename); shared, so never mutate it. */
  async read(): Promise<CacheDocument> {
    const key = await statKey(this.location);
    const memo = snapshots.get(this.location);
    if (memo && memo.key === key && key !== "absent") return memo.doc;
    const doc = await this.#parse(await this.#readText(), false);
    if (doc !== "corrupt") {
      if (key !== "absent") snapshots.set(this.location, { key, doc });
      return doc;
    }
    // Corrupt: take the lock so the backup is made once, by one process.
    return this.update(() => undefined).then(() => this.read());
  }

  /** Read-modify-write under the lock; `mutate` changes the document in place. */
  async update<R>(mutate: (doc: CacheDocument) => R): Promise<R> {
    await mkdir(dirname(this.location), { recursive: true }).catch((error: unknown) => {
      throw new CacheError("CACHE_UNWRITABLE", `${this.location}: cannot create the cache folder (${(error as Error).message})`, { file: this.location, cause: error });
    });
    const release = await acquireCacheLock(this.#lockPath, this.#options.lock);
    try {
      const before = await this.#readText();
      const doc = (await this.#parse(before, true)) as CacheDocument;
      const result = mutate(doc);
      const text = `${JSON.stringify(doc, null, 2)}\n`;
      if (text !== before) await writeFileAtomic(this.location, text, { overwrite: true });
      return result;
    } finally {
      await release();
    }
  }

  async getByHash(sha256: string): Promise<CacheEntry | undefined> {
    return (await this.read()).models[sha256.toLowerCase()];
  }

  async getPathRecord(absPath: string): Promise<PathRecord | undefined> {
    return (await this.read()).paths[absPath];
  }

  async entries(): Promise<CacheEntry[]> {
    return Object.values((await this.read()).models);
  }

  async pathRecords(): Promise<[string, PathRecord][]> {
    return Object.entries((await this.read()).paths);
  }

  async put(items: readonly CachePut[]): Promise<void> {
    await this.update((doc) => applyCachePuts(doc, items));
  }

  async patch(sha256: string, fields: Partial<CacheEntry>): Promise<boolean> {
    const key = sha256.toLowerCase();
    return this.update((doc) => {
      const entry = doc.models[key];
      if (!entry) return false;
      doc.models[key] = { ...entry, ...definedFields(fields), sha256: key } as CacheEntry;
      return true;
    });
  }

  async removeEntries(sha256s: readonly string[]): Promise<number> {
    const keys = new Set(sha256s.map((s) => s.toLowerCase()));
    return this.update((doc) => {
      let removed = 0;
      for (const key of keys) {
        if (doc.models[key]) {
          delete doc.models[key];
          removed++;
        }
      }
      for (const [p, r] of Object.entries(doc.paths)) if (keys.has(r.sha256)) delete doc.paths[p];
      return removed;
    });
  }

  async removePaths(paths: readonly string[]): Promise<number> {
    return this.update((doc) => {
      let removed = 0;
      for (const p of paths) {
        if (doc.paths[p]) {
          delete doc.paths[p];
          removed++;
        }
      }
      return removed;
    });
  }

  async clear(): Promise<number> {
    return this.update((doc) => {
      const n = Object.keys(doc.models).length;
      doc.models = {};
      doc.paths = {};
      return n;
    });
  }

  async sizeOnDisk(): Promise<number> {
    try {
      return (await stat(this.location)).size;
    } catch {
      return 0;
    }
  }
}
