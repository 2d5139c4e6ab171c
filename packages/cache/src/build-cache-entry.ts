import { basename } from "node:path";
import type { CacheEntry } from "./cache-schema.js";
import { detectFilePrecision } from "./detect-file-precision.js";
import { HASH_ALGORITHMS, type FileHashes } from "./hash-algorithms.js";

/**
 * The entry for a file at `path` with these hashes, size and mtime: fields of the entry already
 * stored under the same SHA-256 (`previous`) are kept, `extra` fields win, AutoV2 is derived.
 */
export async function buildCacheEntry(path: string, hashes: FileHashes, size: number, mtimeMs: number, previous: CacheEntry | undefined, extra: Partial<CacheEntry> | undefined): Promise<CacheEntry> {
  const now = new Date().toISOString();
  const entry: CacheEntry = {
    ...(previous ?? {}),
    filename: basename(path),
    sha256: hashes.sha256!,
    file_size: size,
    last_modified: new Date(mtimeMs).toISOString(),
    precision: previous?.precision ?? (await detectFilePrecision(path)),
    architecture: previous?.architecture ?? null,
    civitai: previous?.civitai ?? null,
    cached_at: previous?.cached_at ?? now,
    path,
    ...extra,
  };
  for (const algorithm of HASH_ALGORITHMS) {
    if (algorithm === "sha256") continue;
    const value = hashes[algorithm];
    if (value !== undefined) entry[algorithm] = value;
  }
  entry.autov2 = entry.sha256.slice(0, 10).toUpperCase();
  return entry;
}
