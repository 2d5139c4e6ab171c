import type { CacheEntry, CivitaiInfo } from "./cache-schema.js";
import type { ModelCache } from "./model-cache.js";

/** What CivitAI says about one file, in the cache's terms. */
export interface CivitaiMatch {
  /** The version summary to store (the time of the look-up is added here). */
  readonly info: Omit<CivitaiInfo, "fetched_at" | "not_found">;
  /** The architecture its base model implies ("SDXL 1.0" → "SDXL"), when known. */
  readonly architecture: string | undefined;
}

/**
 * How the cache asks CivitAI, injected by the caller (the CLI adapts `@stmerge/civitai-client`),
 * so the cache and the REST client never import each other.
 */
export interface CivitaiLookup {
  /** Bulk look-up; the answer is keyed by the lowercase SHA-256 asked, and lists only the files found. */
  bySha256(sha256s: readonly string[]): Promise<ReadonlyMap<string, CivitaiMatch>>;
  /** One file by its AutoV3 hash; undefined when CivitAI does not know it. */
  byAutoV3(autov3: string): Promise<CivitaiMatch | undefined>;
}

export interface CivitaiEnrichResult {
  readonly looked: number;
  readonly found: number;
  readonly notFound: number;
}

export interface EnrichWithCivitaiOptions {
  /** Ask again even for entries that already have CivitAI data. */
  readonly force?: boolean;
  /** The current time in ms (default `Date.now()`): when a "not found" is old enough to ask again. */
  readonly now?: number;
}

/** A "not on CivitAI" answer is asked again after this long (files get published, hashes get fixed). */
export const CIVITAI_NOT_FOUND_TTL_MS = 7 * 24 * 3600 * 1000;

function needsLookup(entry: CacheEntry, force: boolean, now: number): boolean {
  if (force || !entry.civitai) return true;
  if (!entry.civitai.not_found) return false;
  const at = Date.parse(entry.civitai.fetched_at ?? "");
  return !Number.isFinite(at) || now - at > CIVITAI_NOT_FOUND_TTL_MS;
}

/**
 * Looks up on CivitAI the entries without CivitAI data (or with a "not found" older than
 * {@link CIVITAI_NOT_FOUND_TTL_MS}): bulk by SHA-256; then, for safetensors files still unknown,
 * by AutoV3 (which ignores header metadata, so a file whose metadata was edited is still found).
 * Stores what it finds, a "not found" marker otherwise, and the architecture the base model
 * implies (a stored architecture wins), in one locked write.
 */
export async function enrichWithCivitai(cache: ModelCache, lookup: CivitaiLookup, entries: readonly CacheEntry[], options: EnrichWithCivitaiOptions = {}): Promise<CivitaiEnrichResult> {
  const now = options.now ?? Date.now();
  const todo = [...new Map(entries.filter((e) => needsLookup(e, Boolean(options.force), now)).map((e) => [e.sha256, e])).values()];
  if (todo.length === 0) return { looked: 0, found: 0, notFound: 0 };
  const matches = new Map(await lookup.bySha256(todo.map((e) => e.sha256)));
  for (const entry of todo) {
    if (matches.has(entry.sha256) || !entry.autov3 || !/\.safetensors$/i.test(entry.filename)) continue;
    const byV3 = await lookup.byAutoV3(entry.autov3);
    if (byV3) matches.set(entry.sha256, byV3);
  }
  const fetchedAt = new Date(now).toISOString();
  let found = 0;
  const updated: CacheEntry[] = [];
  for (const entry of todo) {
    const match = matches.get(entry.sha256);
    if (match) {
      found++;
      updated.push({ ...entry, civitai: { ...match.info, fetched_at: fetchedAt }, architecture: entry.architecture ?? match.architecture ?? null });
    } else {
      const civitai: CivitaiInfo = { model_id: null, version_id: null, base_model: null, model_name: null, version_name: null, nsfw: false, trained_words: [], not_found: true, fetched_at: fetchedAt };
      updated.push({ ...entry, civitai });
    }
  }
  await cache.store.put(updated.map((entry) => ({ entry })));
  return { looked: todo.length, found, notFound: todo.length - found };
}
