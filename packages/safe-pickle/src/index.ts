export {
  CheckpointFormatError,
  describeViolation,
  ForbiddenGlobalError,
  PickleError,
  type PickleViolation,
} from "./pickle-errors.js";
export {
  type GlobalVerdict,
  PyDict,
  PyGlobal,
  PyOpaque,
  PyRecord,
  PySet,
  PyStorage,
  PyTensor,
  PyTuple,
  pyTypeName,
  type PyValue,
} from "./py-values.js";
export { TORCH_DTYPE_GLOBALS, TORCH_STORAGE_CLASSES, type TorchDTypeInfo } from "./torch-dtypes.js";
export {
  ALLOWLIST,
  type AllowlistEntry,
  classifyGlobal,
  type GlobalClassification,
  type GlobalRole,
} from "./allowlist.js";
export {
  type AllocationBudget,
  DEFAULT_PICKLE_LIMITS,
  type GlobalUse,
  type PickleLimits,
  type PickleRunOptions,
  type PickleRunResult,
  PickleTruncatedError,
  runPickle,
} from "./pickle-vm.js";
export {
  MAX_ZIP_ENTRIES,
  readZipDirectory,
  type ZipDirectory,
  type ZipEntry,
} from "./zip-reader.js";
export { type ContainerKind, detectContainer } from "./detect-container.js";
export { findTensors, type FoundTensor } from "./find-tensors.js";
export {
  readStridedTensor,
  type StorageLocation,
} from "./read-strided-tensor.js";
export {
  type CheckpointFormat,
  type CheckpointStructure,
  DEFAULT_LOAD_LIMITS,
  loadCheckpointStructure,
  type LoadLimits,
  type LoadOptions,
  MAX_TRAILING_PICKLES,
  scanAsPickle,
} from "./load-checkpoint-structure.js";
export {
  joinTensorPath,
  MAX_OUTPUT_RATIO,
  MIN_OUTPUT_ALLOWANCE,
  type NamedTensor,
  type OpenCheckpointOptions,
  openTorchCheckpoint,
  type TorchCheckpoint,
} from "./open-torch-checkpoint.js";
export { auditCheckpoint, type AuditedGlobal, type AuditReport, type AuditStatus } from "./audit-checkpoint.js";
export { buildFromGlobal, instantiateClass, type CallSite } from "./build-from-global.js";
export { parseStoragePid, type StoragePid } from "./storage-pid.js";
