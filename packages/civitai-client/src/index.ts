export * from "./civitai-error.js";
export * from "./api-key.js";
export * from "./rate-limiter.js";
export * from "./retry-policy.js";
export * from "./schemas.js";
export * from "./model-version-summary.js";
export * from "./civitai-client.js";
