export * from "./convert-error.js";
export * from "./find-state-dict.js";
export * from "./strip-prefixes.js";
export * from "./detect-file-format.js";
export * from "./prune-rules.js";
export * from "./open-state-dict.js";
export * from "./hash-file.js";
export * from "./convert-checkpoint.js";
export * from "./verify-conversion.js";
export * from "./deferred-header-writer.js";
export * from "./check-written-output.js";
export {
  BATCH_CONVERT_EXTENSIONS,
  checkExistingConversion,
  convertFolder,
  defaultBatchOutputDir,
  discoverConvertibleFiles,
  type BatchConvertFile,
  type BatchConvertSummary,
  type BatchFileResult,
  type BatchFileStatus,
  type ConvertFolderOptions,
  type DiscoveredFiles,
} from "./convert-folder.js";
