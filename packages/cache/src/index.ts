export {
  AUTOV1_LENGTH,
  AUTOV1_MIN_FILE_SIZE,
  AUTOV1_OFFSET,
  AUTOV3_LENGTH,
  AUTOV3_MAX_HEADER,
  autoV3Start,
  civitaiCrc32ToZlib,
  type FileHashes,
  formatCrc32Civitai,
  HASH_ALGORITHMS,
  type HashAlgorithm,
  HashError,
  isHashAlgorithm,
  parseHashAlgorithms,
} from "./hash-algorithms.js";
export {
  blake3Backend,
  type Blake3Backend,
  createBlake3Hasher,
  type IncrementalHasher,
  nativeBlake3ModulePath,
  wasmHashModulePath,
} from "./blake3.js";
export {
  createRangeHasher,
  type RangeHasher,
  rangeHasherCost,
  type RangeHasherKind,
  type RangeHasherSpec,
} from "./range-hashers.js";
export {
  type FileHashResult,
  formatHashes,
  hashFile,
  type HashFileOptions,
  lanesSupported,
  planHashers,
  resolveThreads,
} from "./hash-file.js";
export { createHashingTap, type HashingTap } from "./hash-while-writing.js";
export { createSequentialFileHasher, GAP_FILL_MAX_BYTES, type SequentialFileHasher } from "./sequential-file-hasher.js";
export {
  CACHE_SCHEMA_VERSION,
  type CacheDocument,
  type CacheEntry,
  CacheError,
  type CivitaiInfo,
  emptyCacheDocument,
  isSha256,
  parseCacheDocument,
  type ParsedCache,
  type PathRecord,
} from "./cache-schema.js";
export { acquireCacheLock, type CacheLockOptions, type ReleaseLock } from "./cache-lock.js";
export {
  type CachePut,
  type CacheStore,
  type CacheWarning,
  type CacheWarningCallback,
  resolveCachePath,
} from "./cache-store.js";
export { JsonCacheStore, type JsonCacheStoreOptions } from "./json-cache-store.js";
export { detectFilePrecision } from "./detect-file-precision.js";
export { collectModelFiles, isModelFile, MODEL_EXTENSIONS } from "./collect-model-files.js";
export {
  type CacheLookup,
  type CacheLookupStatus,
  lookupIn,
  matches,
  statFile,
} from "./cache-lookup.js";
export { cacheInfo, type CacheInfo, type CacheVerifyReport, verifyCache } from "./verify-cache.js";
export {
  type IdentifyOptions,
  type IdentifyResult,
  MIN_HASH_PREFIX,
  ModelCache,
  openModelCache,
  type OpenModelCacheOptions,
} from "./model-cache.js";
export { CacheRecorder, type CacheRecorderOptions } from "./cache-recorder.js";
export { applyCachePuts } from "./apply-cache-puts.js";
export { buildCacheEntry } from "./build-cache-entry.js";
export {
  CIVITAI_NOT_FOUND_TTL_MS,
  type CivitaiEnrichResult,
  type CivitaiLookup,
  type CivitaiMatch,
  enrichWithCivitai,
  type EnrichWithCivitaiOptions,
} from "./enrich-with-civitai.js";
