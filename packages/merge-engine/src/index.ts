export {
  ARCHITECTURE_LABELS,
  type ArchitectureId,
  CONV_IN_VARIANTS,
  KEY_LAYOUTS,
  type KeyLayout,
  type ModelVariant,
  NAME_METADATA_FIELDS,
  PREDICTION_METADATA,
  type PredictionType,
  SDXL_DERIVATIVE_HINTS,
  type SdxlDerivative,
  TEXT_ENCODER_SIGNATURES,
  TRANSFORMER_SIGNATURES,
  UNET_CONTEXT_DIM_PROBE,
  UNET_CONTEXT_DIMS,
  UNET_CONV_IN_PROBE,
  V_PREDICTION_KEYS,
  VAE_DIFFUSERS_MARKER,
  VAE_KEY,
} from "./models/architecture-signatures.js";
export { type ArchitectureHints, type ArchitectureReport, detectArchitecture } from "./models/detect-architecture.js";
export {
  BLOCK_MAPS,
  type BlockMap,
  blockMapFor,
  blockOfKey,
  type BlockOptions,
  type BlockRule,
  blockValuesFromList,
  FLUX_BLOCK_MAP,
  SD1_BLOCK_MAP,
  SD3_BLOCK_MAP,
  SDXL_BLOCK_MAP,
  TIME_EMBED_BLOCK,
} from "./models/block-maps.js";
export {
  CHECKPOINT_VAE_PREFIX,
  countUpBlocks,
  FLUX_VAE_PREFIX,
  LDM_VAE_PREFIX,
  shapesCompatibleIgnoringTrailingOnes,
  vaeKeyToLdm,
} from "./models/vae-key-map.js";
export {
  COPY_FROM_FIRST_KEYS,
  isCopyFromFirstKey,
  PRUNE_RULES,
  type PruneRule,
  shouldPruneKey,
} from "./models/key-rules.js";
export { MergeError } from "./merge-error.js";
export {
  type AnyMergeMethod,
  chunkingOf,
  defineMergeMethod,
  type MergeChunking,
  type MergeMethod,
  type MergeMethodArity,
  type MergeMethodContext,
  type MergeStatistics,
} from "./methods/merge-method.js";
export { assertMergeMethod, createMethodRegistry, type MethodRegistry } from "./methods/method-registry.js";
export { checkParamNames, methodParamNames } from "./methods/check-param-names.js";
export { BUILTIN_MERGE_METHODS } from "./methods/builtin-methods.js";
export { createSeededRandom, hashSeed, randomForKey, type SeededRandom } from "./methods/seeded-random.js";
export { weightedSum } from "./methods/weighted-sum.js";
export { addDifference } from "./methods/add-difference.js";
export { trainDifference } from "./methods/train-difference.js";
export { ties } from "./methods/ties.js";
export { dare } from "./methods/dare.js";
export { slerp } from "./methods/slerp.js";
export { consensus } from "./methods/consensus.js";
export {
  type ManifestInput,
  manifestJsonSchema,
  ManifestSchema,
  ModelEntrySchema,
  OutputObjectSchema,
  type ParsedManifest,
  VaeObjectSchema,
} from "./manifest/manifest-schema.js";
export {
  DEFAULT_OUTPUT_FILENAME,
  type LoadedManifest,
  loadManifest,
  type ManifestModel,
  MAX_MANIFEST_DEPTH,
  parseManifest,
  portableManifestPath,
  resolveManifestPath,
} from "./manifest/load-manifest.js";
export { loadMergeMethodPlugin } from "./methods/load-method-plugin.js";
export {
  type BlockSummary,
  type MergePlan,
  type PlanAction,
  planDescriptors,
  type PlanEntry,
  type PlanModel,
} from "./merge/merge-plan.js";
export { buildMergePlan, DEFAULT_MEMORY_BUDGET, type MergePlanInput, type MergePlanOptions } from "./merge/build-merge-plan.js";
export { checkMergeInputs } from "./merge/check-merge-inputs.js";
export { architectureOfLabel } from "./merge/check-declared-architecture.js";
export { type ExecuteMergeOptions, executeMergePlan, type ExecuteMergeResult } from "./merge/execute-merge-plan.js";
export { buildMergeMetadata, MAX_ANCESTRY_DEPTH, type MergeMetadataOptions } from "./merge/merge-metadata.js";
export { type LearnedInputHash, type MergeOverrides, runMerge, type RunMergeOptions, type RunMergeResult } from "./merge/run-merge.js";
export { readRecipeFromOutput, manifestFromRecipe, RECIPE_FORMAT_VERSION, MAX_RECIPE_BYTES, MAX_ANCESTRY_BYTES, MAX_RECIPE_INPUTS, type OutputRecipe, type RecipeInput, type RecipeFromOutputOptions } from "./merge/recipe-from-output.js";
export {
  BATCH_CONVERT_EXTENSIONS,
  type BatchConvertFile,
  type BatchConvertSummary,
  type BatchFileResult,
  type BatchFileStatus,
  checkExistingConversion,
  checkWrittenHeader,
  type ConversionReport,
  convertCheckpoint,
  CONVERTER_NAME,
  ConvertError,
  convertFolder,
  type ConvertFolderOptions,
  type ConvertOptions,
  type ConvertResult,
  DATA_PARALLEL_PREFIX,
  defaultBatchOutputDir,
  defaultConvertOutput,
  detectFileFormat,
  discoverConvertibleFiles,
  type DiscoveredFiles,
  type FileFormatKind,
  type FileFormatReport,
  findStateDict,
  type FoundStateDict,
  isPrunableKey,
  looksLikeSafetensors,
  type ModelFileFormat,
  openStateDict,
  type OpenStateDictOptions,
  planPruning,
  type PrunePlan,
  sha256File,
  sha256FileInWorker,
  type StateDictSource,
  stripDataParallelPrefixes,
  type StrippedName,
  type TensorCheck,
  type TensorCheckStatus,
  verifyConversion,
  type VerifyConversionOptions,
  type WrittenFile,
} from "./convert/index.js";
export { detectPrecision } from "./scan/detect-precision.js";
export { proposeOutputName } from "./scan/propose-output-name.js";
export { applyKnownIdentities, type KnownModelIdentity } from "./scan/apply-known-identities.js";
export {
  type FileHashes,
  formatManifest,
  isStmergeMergeOutput,
  scanFolder,
  type ScannedModel,
  type ScanOptions,
  type ScanResult,
} from "./scan/scan-folder.js";
export { extractVae, type ExtractVaeOptions, type ExtractVaeResult } from "./vae/extract-vae.js";
export { openMergeInput } from "./merge/open-merge-input.js";
export { LORA_SUFFIXES, detectLoraModules, looksLikeLora, type LoraRole, type LoraFormat, type LoraSuffix, type LoraModule, type LoraFileLayout } from "./lora/lora-formats.js";
export { loraDelta, alphaScale, type LoraTensor, type LoraDelta, type ScaleRule, type PeftAlpha } from "./lora/lora-delta.js";
export { buildLoraKeyMap, ldmUnetPathToDiffusers, type LoraTarget } from "./lora/lora-key-map.js";
export { loadLora, loraTensorOf, peftAlphaFromMetadata, MAX_LORA_FILE_BYTES, type LoadedLora } from "./lora/load-lora.js";
export { planLoraBake, executeLoraBake, bakeLoras, loraDeltaElements, type LoraBakeInput, type LoraPlacement, type UnplacedModule, type LoraBakePlan, type BakeLoraOptions, type BakeLoraResult } from "./lora/bake-lora.js";
export { extractLora, extractTargets, type ExtractTarget, type ExtractLoraOptions, type ExtractedModule, type ExtractLoraResult } from "./lora/extract-lora.js";
export { mergeLoras, type LoraMergeInput, type MergeLorasOptions, type MergedModule, type MergeLorasResult } from "./lora/merge-loras.js";
export { describeLora, type LoraSummary } from "./lora/describe-lora.js";
export { describeModelFile, type DescribeModelFileOptions, type ModelFileDescription } from "./inspect/describe-model-file.js";
