import { resolve } from "node:path";
import { openModelCache, type CacheEntry, type CacheRecorder, type CivitaiLookup, type CivitaiMatch, type FileHashes, type ModelCache } from "@stmerge/cache";
import { baseModelToArchitecture, CivitaiError, createCivitaiClient, summarizeModelVersion, type CivitaiClient, type ModelVersion } from "@stmerge/civitai-client";
import type { KnownModelIdentity } from "@stmerge/merge-engine";
import type { Command } from "commander";
import type { CliIo } from "./cli-io.js";

/**
 * Where the CLI wires the identity libraries together (they never import each other): the
 * metadata cache, the CivitAI client, and the helpers other commands call to take a model's
 * hash from the cache, prefer a cached architecture, and record their outputs.
 */

export interface CacheFlags {
  /** `--cache-file <path>`. */
  cacheFile?: string;
  /** `--no-cache` sets this false. */
  cache?: boolean;
  /** `--civitai` / `--no-civitai`; undefined means "on when a key is set". */
  civitai?: boolean;
}

/**
 * The one definition of `--cache-file` and `--no-cache`, used by every command that takes them.
 * `noCache` words what `--no-cache` means for the command, or is false where the command is the
 * cache itself (`stmerge cache`).
 */
export function addCacheFileOptions(command: Command, options: { noCache?: string | false } = {}): Command {
  command.option("--cache-file <path>", "metadata cache file (default: $STMERGE_CACHE or ~/.model_merger/model_cache.json)");
  return options.noCache === false ? command : command.option("--no-cache", options.noCache ?? "neither read nor update the metadata cache");
}

/** Adds `--cache-file`, `--no-cache` and `--civitai/--no-civitai` to a command. */
export function addCacheOptions(command: Command): Command {
  return addCacheFileOptions(command)
    .option("--civitai", "look files up on CivitAI (default: on when CIVITAI_API_KEY is set)")
    .option("--no-civitai", "never contact CivitAI");
}

/**
 * Whether an error is the cache failing (unreadable, unwritable, locked elsewhere) rather than
 * the command's own work: such errors become a warning and the command goes on without the cache.
 */
export function isCacheFailure(error: unknown): error is Error & { code: string } {
  const code = (error as { code?: unknown } | undefined)?.code;
  return error instanceof Error && typeof code === "string" && /^CACHE_(UNWRITABLE|UNREADABLE|LOCK_FAILED|LOCKED|CORRUPT)$/.test(code);
}

/**
 * Runs a CivitAI step that must never fail the command: CivitAI unreachable, timing out, failing
 * after retries or refusing the key, and the cache failing to store the answers, become one
 * warning and undefined.
 */
export async function civitaiOptional<T>(step: () => Promise<T>, warn: (text: string) => void): Promise<T | undefined> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof CivitaiError) warn(`CivitAI not reached (${error.message}); going on without it, look-ups run again next time`);
    else if (isCacheFailure(error)) warn(cacheNotUpdated(error));
    else throw error;
    return undefined;
  }
}

/** The one warning for a cache that could not be updated (the command's results are complete). */
export function cacheNotUpdated(error: Error): string {
  return `cache not updated: ${error.message}`;
}

/** Opens the cache named by flags and environment; cache warnings (corrupt file moved aside, migration) go to `warn`. */
export function openCliCache(io: CliIo, flags: CacheFlags, warn: (text: string) => void): ModelCache {
  return openModelCache({ env: io.env as NodeJS.ProcessEnv, onWarning: (w) => warn(w.message), ...(flags.cacheFile ? { path: resolve(io.cwd, flags.cacheFile) } : {}) });
}

/** The CivitAI client for this invocation, or undefined when look-ups are off. */
export function civitaiFor(io: CliIo, flags: CacheFlags, onRetry?: (text: string) => void): CivitaiClient | undefined {
  const client = createCivitaiClient({
    env: io.env as NodeJS.ProcessEnv,
    cwd: io.cwd,
    // Look-ups are an extra: two quick retries (about 3 s) before the command goes on without them.
    retry: { retries: 2 },
    ...(onRetry ? { onRetry: (r) => onRetry(`CivitAI: ${r.reason}; retry ${r.attempt} in ${(r.delayMs / 1000).toFixed(1)} s`) } : {}),
  });
  const wanted = flags.civitai ?? client.authenticated;
  return wanted ? client : undefined;
}

/** "CivitAI key configured (env)" or "no CivitAI key (public look-ups only)". */
export function civitaiStatus(io: CliIo): string {
  const client = createCivitaiClient({ env: io.env as NodeJS.ProcessEnv, cwd: io.cwd, rateLimit: false });
  return client.authenticated ? `CivitAI key configured (${client.keySource === "dotenv" ? ".env" : "env"})` : "no CivitAI key (public look-ups only)";
}

/**
 * Startup banner lines: cache entries and CivitAI key status. Never throws (a banner must not
 * fail a command); pass `warn` so a corrupt cache moved aside while reading is still reported.
 */
export async function cacheBannerLines(io: CliIo, flags: CacheFlags = {}, warn: (text: string) => void = () => undefined): Promise<string[]> {
  const lines: string[] = [];
  if (flags.cache !== false) {
    try {
      const doc = await openCliCache(io, flags, warn).store.read();
      lines.push(`cache ${Object.keys(doc.models).length} entries`);
    } catch {
      lines.push("cache unreadable");
    }
  }
  lines.push(civitaiStatus(io));
  return lines;
}

/** Architecture an entry implies: the stored one, else the CivitAI base model's. */
function architectureOf(entry: CacheEntry | undefined): string | undefined {
  if (!entry) return undefined;
  return entry.architecture ?? baseModelToArchitecture(entry.civitai?.base_model) ?? undefined;
}

/**
 * A model's identity from the cache when it is still valid for the file (same size and mtime),
 * so loading a model needs no re-hash; undefined when the cache does not know it as it is now.
 */
export async function lookupCachedIdentity(path: string, io: CliIo, flags: CacheFlags = {}): Promise<CacheEntry | undefined> {
  if (flags.cache === false) return undefined;
  try {
    const found = await openCliCache(io, flags, () => undefined).lookup(resolve(io.cwd, path));
    return found.status === "fresh" ? found.entry : undefined;
  } catch {
    return undefined;
  }
}

/** For `scan`: a file's cached hashes and its cached (or CivitAI) architecture, while the file is unchanged. */
export async function cachedModelIdentity(path: string, io: CliIo, flags: CacheFlags = {}): Promise<KnownModelIdentity | undefined> {
  const entry = await lookupCachedIdentity(path, io, flags);
  return entry && { sha256: entry.sha256, crc32: entry.crc32, architecture: architectureOf(entry) };
}

/**
 * Records a file stmerge wrote (merge or convert output). With `source`, the output carries
 * the source's CivitAI data and architecture (a converted file is the same model). Returns the
 * entry, or undefined with `--no-cache`.
 */
export async function recordOutputInCache(
  path: string,
  io: CliIo,
  options: CacheFlags & { source?: string; hashes?: FileHashes; extra?: Partial<CacheEntry>; warn?: (text: string) => void; recorder?: CacheRecorder } = {},
): Promise<CacheEntry | undefined> {
  if (options.cache === false) return undefined;
  const cache = openCliCache(io, options, options.warn ?? (() => undefined));
  // A batch records through its recorder: same entry, written with the batch's next locked write.
  const recorder = options.hashes?.sha256 ? options.recorder : undefined;
  const reader = recorder ?? cache;
  const extra: Partial<CacheEntry> = { ...options.extra };
  if (options.source) {
    const src = await reader.lookup(resolve(io.cwd, options.source));
    if (src.entry) {
      if (src.entry.civitai && extra.civitai === undefined) extra.civitai = src.entry.civitai;
      if (src.entry.architecture && extra.architecture === undefined) extra.architecture = src.entry.architecture;
      extra.source_sha256 ??= src.entry.sha256;
    }
  }
  // A file written over another (--overwrite) replaces the entry of the one it replaced, unless
  // that content still lives at another path.
  const abs = resolve(io.cwd, path);
  const replaced = (await reader.lookup(abs)).entry;
  if (recorder) return recorder.record(abs, { hashes: options.hashes!, extra, ...(replaced ? { replaces: replaced.sha256 } : {}) });
  const entry = await cache.record(abs, { ...(options.hashes ? { hashes: options.hashes } : {}), extra });
  if (replaced && replaced.sha256 !== entry.sha256 && (await cache.pathsOf(replaced.sha256)).length === 0) await cache.store.removeEntries([replaced.sha256]);
  return entry;
}

/**
 * The cache's CivitAI look-up over the REST client: the client's answers summarised into the
 * cache's terms (the enrichment policy itself lives in `@stmerge/cache`'s `enrichWithCivitai`).
 */
export function civitaiLookup(client: CivitaiClient): CivitaiLookup {
  const matchOf = (version: ModelVersion): CivitaiMatch => {
    const info = summarizeModelVersion(version);
    return { info, architecture: baseModelToArchitecture(info.base_model) };
  };
  return {
    async bySha256(sha256s) {
      const versions = await client.getModelVersionsByHashes(sha256s);
      return new Map([...versions].map(([sha256, version]) => [sha256, matchOf(version)]));
    },
    async byAutoV3(autov3) {
      const answer = await client.getModelVersionByHash(autov3);
      return answer.found ? matchOf(answer.value) : undefined;
    },
  };
}
