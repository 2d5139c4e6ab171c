export { ConvertError } from "./convert-error.js";
export { findStateDict, type FoundStateDict } from "./find-state-dict.js";
export { DATA_PARALLEL_PREFIX, stripDataParallelPrefixes, type StrippedName } from "./strip-prefixes.js";
export { detectFileFormat, type FileFormatKind, type FileFormatReport } from "./detect-file-format.js";
export { isPrunableKey, planPruning, type PrunePlan } from "./prune-rules.js";
export {
  looksLikeSafetensors,
  type ModelFileFormat,
  openStateDict,
  type OpenStateDictOptions,
  type StateDictSource,
} from "./open-state-dict.js";
export { sha256File, sha256FileInWorker } from "./hash-file.js";
export {
  convertCheckpoint,
  CONVERTER_NAME,
  type ConvertOptions,
  type ConvertResult,
  defaultConvertOutput,
} from "./convert-checkpoint.js";
export {
  type ConversionReport,
  type TensorCheck,
  type TensorCheckStatus,
  verifyConversion,
  type VerifyConversionOptions,
} from "./verify-conversion.js";
export { checkWrittenHeader, type WrittenFile } from "./check-written-output.js";
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
