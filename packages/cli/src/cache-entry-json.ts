import type { CacheEntry } from "@stmerge/cache";

/** snake_case → camelCase for one key ("file_size" → "fileSize"). */
function camel(key: string): string {
  return key.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/**
 * A cache entry as it appears in --json results: camelCase like every other document, the size
 * as `sizeBytes`. The cache file keeps the Python tool's snake_case names; only the CLI's JSON
 * is translated. Extra fields (kept from other tools) are carried over, camelCased too.
 */
export function cacheEntryJson(entry: CacheEntry): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(entry)) {
    if (k === "file_size") out.sizeBytes = v;
    else if (k === "civitai" && v && typeof v === "object") out.civitai = Object.fromEntries(Object.entries(v).map(([ck, cv]) => [camel(ck), cv]));
    else out[camel(k)] = v;
  }
  return out;
}
