import { stat } from "node:fs/promises";
import { basename } from "node:path";
import type { CacheDocument, CacheEntry } from "./cache-schema.js";

export type CacheLookupStatus = "fresh" | "stale" | "uncached" | "missing";

export interface CacheLookup {
  readonly path: string;
  readonly status: CacheLookupStatus;
  /** The entry, when `fresh` (valid for the file as it is now) or `stale` (what it was). */
  readonly entry?: CacheEntry;
  readonly size?: number;
  readonly mtimeMs?: number;
}

const MTIME_TOLERANCE_MS = 1;

/** Whether a record still describes a file of this size and mtime (1 ms tolerance for float mtimes). */
export function matches(record: { file_size: number; mtime_ms: number }, size: number, mtimeMs: number): boolean {
  return record.file_size === size && Math.abs(record.mtime_ms - mtimeMs) < MTIME_TOLERANCE_MS;
}

/**
 * A v1 entry (the Python tool's) has no path index: it matches by file name, size and mtime.
 * Only entries that no path record points at count as v1 ones: an entry we indexed ourselves
 * describes its own path, and a same-named copy elsewhere (same size and mtime after `cp -p`,
 * or a different file) must be hashed, never assumed identical.
 */
function legacyMatch(doc: CacheDocument, path: string, size: number, mtimeMs: number): CacheEntry | undefined {
  const name = basename(path);
  let indexed: Set<string> | undefined;
  for (const entry of Object.values(doc.models)) {
    if (entry.filename !== name || entry.file_size !== size) continue;
    indexed ??= new Set(Object.values(doc.paths).map((r) => r.sha256));
    if (indexed.has(entry.sha256)) continue;
    const t = Date.parse(entry.last_modified.endsWith("Z") || /[+-]\d\d:\d\d$/.test(entry.last_modified) ? entry.last_modified : `${entry.last_modified}Z`);
    if (Number.isFinite(t) && Math.abs(t - mtimeMs) < MTIME_TOLERANCE_MS) return entry;
  }
  return undefined;
}

/**
 * Where a path stands in a cache snapshot, given the file's current size and mtime (undefined
 * when the file is gone): fresh, stale (changed since hashed), uncached, or missing.
 */
export function lookupIn(doc: CacheDocument, path: string, size: number | undefined, mtimeMs: number | undefined): CacheLookup {
  const record = doc.paths[path];
  if (size === undefined || mtimeMs === undefined) {
    const entry = record ? doc.models[record.sha256] : undefined;
    return entry ? { path, status: "missing", entry } : { path, status: "missing" };
  }
  if (record) {
    const entry = doc.models[record.sha256];
    if (entry && matches(record, size, mtimeMs)) return { path, status: "fresh", entry, size, mtimeMs };
    if (entry) return { path, status: "stale", entry, size, mtimeMs };
  }
  const legacy = legacyMatch(doc, path, size, mtimeMs);
  if (legacy) return { path, status: "fresh", entry: legacy, size, mtimeMs };
  return { path, status: "uncached", size, mtimeMs };
}

/** Size and mtime of a regular file, or undefined when there is none. */
export async function statFile(path: string): Promise<{ size: number; mtimeMs: number } | undefined> {
  try {
    const info = await stat(path);
    return info.isFile() ? { size: info.size, mtimeMs: info.mtimeMs } : undefined;
  } catch {
    return undefined;
  }
}
