import { StmergeError } from "@stmerge/core-tensors";
import { formatCrc32Civitai } from "./hash-algorithms.js";

/** Errors of the metadata cache (lock timeouts, unsupported versions, unwritable locations). */
export class CacheError extends StmergeError {}

export const CACHE_SCHEMA_VERSION = 2;

/** What CivitAI said about a file (the roadmap's `civitai` object). */
export interface CivitaiInfo {
  model_id: number | null;
  version_id: number | null;
  base_model: string | null;
  model_name: string | null;
  version_name: string | null;
  nsfw: boolean;
  trained_words: string[];
  /** Model type ("Checkpoint", "LORA", ...), when known. */
  type?: string | null;
  /** ISO time of the lookup; a "not found" answer is remembered with `not_found: true`. */
  fetched_at?: string;
  not_found?: boolean;
}

/** One model file's identity, keyed by its SHA-256 (lowercase). Unknown fields are kept. */
export interface CacheEntry {
  filename: string;
  sha256: string;
  file_size: number;
  /** ISO-8601 UTC of the file's mtime when hashed. */
  last_modified: string;
  precision: string | null;
  architecture: string | null;
  civitai: CivitaiInfo | null;
  cached_at: string;
  crc32?: string | null;
  autov1?: string | null;
  autov2?: string | null;
  autov3?: string | null;
  blake3?: string | null;
  /** The absolute path it was last seen at. */
  path?: string | null;
  [extra: string]: unknown;
}

/** Index record: an absolute path, the SHA-256 of its content, and the size+mtime that make it valid. */
export interface PathRecord {
  sha256: string;
  file_size: number;
  mtime_ms: number;
}

export interface CacheDocument {
  version: number;
  models: Record<string, CacheEntry>;
  paths: Record<string, PathRecord>;
}

export function emptyCacheDocument(): CacheDocument {
  return { version: CACHE_SCHEMA_VERSION, models: {}, paths: {} };
}

const SHA256_RE = /^[0-9a-f]{64}$/;

export function isSha256(value: string): boolean {
  return SHA256_RE.test(value.toLowerCase());
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function nullableString(value: unknown): value is string | null | undefined {
  return value === undefined || value === null || typeof value === "string";
}

/** Why an entry is not a valid cache entry, or undefined when it is. */
function entryProblem(key: string, e: unknown): string | undefined {
  if (!isObject(e)) return `models[${key}] is not an object`;
  if (typeof e.sha256 !== "string" || !isSha256(e.sha256)) return `models[${key}].sha256 is not a SHA-256`;
  if (typeof e.filename !== "string") return `models[${key}].filename is not a string`;
  if (typeof e.file_size !== "number" || !Number.isFinite(e.file_size) || e.file_size < 0) return `models[${key}].file_size is not a size`;
  if (typeof e.last_modified !== "string") return `models[${key}].last_modified is not a string`;
  for (const f of ["precision", "architecture", "cached_at", "crc32", "autov1", "autov2", "autov3", "blake3", "path"]) {
    if (!nullableString(e[f])) return `models[${key}].${f} is not a string`;
  }
  if (e.civitai !== undefined && e.civitai !== null && !isObject(e.civitai)) return `models[${key}].civitai is not an object`;
  return undefined;
}

function normalizeEntry(e: Record<string, unknown>): CacheEntry {
  const c = e.civitai;
  const civitai: CivitaiInfo | null = isObject(c)
    ? {
        ...c,
        model_id: typeof c.model_id === "number" ? c.model_id : null,
        version_id: typeof c.version_id === "number" ? c.version_id : null,
        base_model: typeof c.base_model === "string" ? c.base_model : null,
        model_name: typeof c.model_name === "string" ? c.model_name : null,
        version_name: typeof c.version_name === "string" ? c.version_name : null,
        nsfw: c.nsfw === true,
        trained_words: Array.isArray(c.trained_words) ? c.trained_words.filter((w): w is string => typeof w === "string") : [],
      }
    : null;
  return {
    ...e,
    filename: e.filename as string,
    sha256: (e.sha256 as string).toLowerCase(),
    file_size: e.file_size as number,
    last_modified: e.last_modified as string,
    precision: (e.precision as string | null | undefined) ?? null,
    architecture: (e.architecture as string | null | undefined) ?? null,
    civitai,
    cached_at: typeof e.cached_at === "string" && e.cached_at ? e.cached_at : new Date().toISOString(),
  };
}

export interface ParsedCache {
  document: CacheDocument;
  /** The version the file had when it was older than the current schema. */
  migratedFrom?: number;
}

/**
 * Validates a parsed cache file and migrates older versions. Throws `CacheError` with code
 * `CACHE_CORRUPT` for a file that is not a cache, `CACHE_VERSION_UNSUPPORTED` for a newer one.
 */
export function parseCacheDocument(raw: unknown, file: string): ParsedCache {
  const corrupt = (why: string) => new CacheError("CACHE_CORRUPT", `${file}: not a valid stmerge cache (${why})`, { file });
  if (!isObject(raw)) throw corrupt("top level is not an object");
  const version = raw.version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1) throw corrupt("missing or invalid version");
  if (version > CACHE_SCHEMA_VERSION) {
    throw new CacheError("CACHE_VERSION_UNSUPPORTED", `${file}: cache version ${version} is newer than this stmerge understands (${CACHE_SCHEMA_VERSION}); upgrade stmerge or use --cache-file`, { file });
  }
  if (!isObject(raw.models)) throw corrupt("models is not an object");
  const models: Record<string, CacheEntry> = {};
  for (const [key, e] of Object.entries(raw.models)) {
    const problem = entryProblem(key, e);
    if (problem) throw corrupt(problem);
    const entry = normalizeEntry(e as Record<string, unknown>);
    if (version === 1 && typeof entry.crc32 === "string" && /^[0-9a-fA-F]{8}$/.test(entry.crc32)) {
      // v1 (the Python tool) stored zlib's lowercase order; we keep CivitAI's byte order.
      entry.crc32 = formatCrc32Civitai(Number.parseInt(entry.crc32, 16));
    }
    if (version === 1) entry.autov2 ??= entry.sha256.slice(0, 10).toUpperCase();
    models[entry.sha256] = entry;
  }
  const paths: Record<string, PathRecord> = {};
  if (version >= 2) {
    if (!isObject(raw.paths)) throw corrupt("paths is not an object");
    for (const [p, r] of Object.entries(raw.paths)) {
      if (!isObject(r) || typeof r.sha256 !== "string" || typeof r.file_size !== "number" || typeof r.mtime_ms !== "number") throw corrupt(`paths[${p}] is not a path record`);
      paths[p] = { sha256: r.sha256.toLowerCase(), file_size: r.file_size, mtime_ms: r.mtime_ms };
    }
  }
  const document: CacheDocument = { ...raw, version: CACHE_SCHEMA_VERSION, models, paths };
  return version < CACHE_SCHEMA_VERSION ? { document, migratedFrom: version } : { document };
}
