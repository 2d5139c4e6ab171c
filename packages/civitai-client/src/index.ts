export { CivitaiError, type CivitaiErrorCode } from "./civitai-error.js";
export {
  type ApiKeySource,
  normalizeBaseUrl,
  parseDotEnv,
  resolveApiKey,
  resolveBaseUrl,
} from "./api-key.js";
export { type Clock, type RateLimitOptions, realClock, TokenBucket } from "./rate-limiter.js";
export { backoffDelay, parseRetryAfter, type RetryOptions } from "./retry-policy.js";
export {
  type FileHashesResponse,
  fileHashesSchema,
  type Model,
  type ModelFileResponse,
  modelFileSchema,
  modelSchema,
  type ModelVersion,
  modelVersionListSchema,
  modelVersionSchema,
} from "./schemas.js";
export { baseModelToArchitecture, type ModelVersionSummary, summarizeModelVersion } from "./model-version-summary.js";
export {
  BULK_HASH_LIMIT,
  CivitaiClient,
  type CivitaiClientOptions,
  createCivitaiClient,
  type LookupResult,
  type RetryInfo,
} from "./civitai-client.js";
