import type { CacheDocument, CacheEntry } from "./cache-schema.js";
import type { CachePut } from "./cache-store.js";

/** The fields of `value` that are not undefined (an upsert keeps stored values for the rest). */
export function definedFields<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/**
 * Applies upserts to a document in place, in order: fields given replace stored ones, fields left
 * undefined are kept; an item's `replaces` entry is dropped once no path points at it. The one
 * definition of a put, shared by the JSON store (under its lock) and a recorder's private view,
 * so a batch of records yields the document the same records written one by one would.
 */
export function applyCachePuts(doc: CacheDocument, items: readonly CachePut[]): void {
  for (const { entry, path, pathRecord, replaces } of items) {
    const key = entry.sha256.toLowerCase();
    const merged = { ...(doc.models[key] ?? {}), ...definedFields(entry), sha256: key } as CacheEntry;
    merged.precision ??= null;
    merged.architecture ??= null;
    merged.civitai ??= null;
    doc.models[key] = merged;
    if (path && pathRecord) doc.paths[path] = { ...pathRecord, sha256: pathRecord.sha256.toLowerCase() };
    const old = replaces?.toLowerCase();
    if (old && old !== key && doc.models[old] && !Object.values(doc.paths).some((r) => r.sha256 === old)) delete doc.models[old];
  }
}
