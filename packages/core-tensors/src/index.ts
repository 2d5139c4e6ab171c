export {
  boundErrorMessage,
  isStmergeError,
  KernelError,
  SafetensorsError,
  StmergeError,
  TensorIoError,
} from "./errors.js";
export {
  dominantFloatDType,
  type DType,
  DTYPE_SIZE,
  DTYPES,
  dtypeSize,
  dtypeToPrecision,
  isDType,
  isFloatDType,
  type Precision,
  PRECISION_DTYPE,
  shapeElementCount,
} from "./dtypes.js";
export { type TensorDescriptor, type TensorSink, type TensorSource } from "./tensor-source.js";
export {
  type AtomicFile,
  type AtomicFileOptions,
  type CommitOptions,
  createAtomicFile,
  findLeftoverTempFiles,
  isTempNameFor,
  openTempPaths,
  removeOpenTempFilesSync,
  writeFileAtomic,
} from "./atomic-file.js";
export { assertNotSameFile } from "./assert-not-same-file.js";
export { crc32, crc32Implementation, nativeCrc32ModulePath, type Crc32Implementation } from "./crc32.js";
export { crc32Combine } from "./crc32-combine.js";
export { drawBits } from "./counter-draws-module.js";
export { hasLoneSurrogate } from "./has-lone-surrogate.js";
export { readFully, writeFully } from "./read-fully.js";
export { DIRECT_ALIGNMENT, directWritesAvailable, openDirectWrites, pageAlignedSharedBytes, viewLaidOutFor, type DirectWrites, type DirectWritesOptions } from "./direct-writes.js";
export { readAheadChunks } from "./read-ahead-chunks.js";
export {
  MAX_SAFETENSORS_HEADER_BYTES,
  MAX_SAFETENSORS_HEADER_DEPTH,
  parseSafetensorsHeader,
  parseSafetensorsHeaderLength,
  type SafetensorsHeader,
  type SafetensorsTensorEntry,
} from "./parse-safetensors-header.js";
export { openSafetensors, openSafetensorsHandle, readSafetensorsHeader, type SafetensorsSource } from "./open-safetensors.js";
export {
  createSafetensorsWriter,
  type InMemoryTensor,
  planSafetensorsLayout,
  type SafetensorsLayout,
  type SafetensorsWriterOptions,
  writeSafetensors,
} from "./safetensors-writer.js";
export { type DeviceChoice, type EncodedTensor, type HistogramBins, type KernelArena, type KernelBackend, type QuotaSpan, type TaskVectorWindow, type WindowPart } from "./kernel-backend.js";
export { type ProgressCallback, type ProgressEvent } from "./progress.js";
export { orderedTap, TAP_MAX_HELD_BYTES, type OrderedTap, type OutputByteTap } from "./output-byte-tap.js";
export { tapSourceReads, type InputReadTap } from "./input-read-tap.js";
export {
  bf16BitsToF32,
  convertDType,
  decodeToF32,
  encodeFromF32,
  f16BitsToF32,
  f32ToBF16Bits,
  f32ToF16Bits,
} from "./float-codecs.js";
export { type CpuKernelBackendOptions, createCpuKernelBackend, DEFAULT_INLINE_BELOW, defaultWorkerCount } from "./cpu-kernel-backend.js";
export { binOfRank, countEqual, cutInList } from "./cut-in-list.js";
export { sampleTaskVectorHistogram } from "./sample-task-vector-histogram.js";
export { createTfjsKernelBackend, type TfNamespace, type TfTensor } from "./tfjs-kernel-backend.js";
export {
  createKernelBackend,
  describeGpuLoadProblem,
  type GpuLoadProblem,
  type KernelBackendOptions,
  type KernelBackendSelection,
  loadTfjsNodeGpu,
  selectKernelBackend,
} from "./select-kernel-backend.js";
export { type FileIdentity, fileIdentityOf, type OpenedFile, openFileForRead, sameFileIdentity } from "./open-file-for-read.js";
export { fileSystemError, errnoOf } from "./file-system-error.js";
export { throwIfAborted } from "./throw-if-aborted.js";
export { startEvalWorker } from "./start-eval-worker.js";
export { matmulF32, matmulTransposedAF32, transposeF32, kronF32 } from "./linear-algebra.js";
export { randomizedSvd, jacobiSvd, type TruncatedSvd, type RandomizedSvdOptions } from "./randomized-svd.js";
export { sniffFileKind, sniffFile, SNIFF_BYTES, type SniffedKind, type SniffedFile } from "./sniff-file-kind.js";
