export { bundleEntry, type BundleEntryOptions } from "./bundle-entry.js";
export { firstEncodedDifference } from "./first-encoded-difference.js";
export { injectWriteFault, type InjectedFault } from "./inject-write-fault.js";
export { type CountingReads, openCountingReads } from "./open-counting-reads.js";
export { buildTorchCheckpoint, type TorchTensorDType, type TorchTensorInput, writeTorchCheckpoint } from "./write-torch-checkpoint.js";
export { TINY_SD1_LAYOUT, type TinySd1ModelOptions, type TinyTensor, writeTinySd1Model } from "./write-tiny-sd1-model.js";
export { maxUlpF16 } from "./max-ulp-f16.js";
export { orderCheckingTap } from "./order-checking-tap.js";
export { seededBytes } from "./seeded-bytes.js";
export { seededValues } from "./seeded-values.js";
export { tempDir } from "./temp-dir.js";
export { writeMixedDtypeModel } from "./write-mixed-dtype-model.js";
export { TINY_SD1, type TinyLayoutTensor, type TinyModelOptions, writeTinyModel } from "./write-tiny-model.js";
// Hostile checkpoint containers are built by safe-pickle's tests (which own the pickle and zip
// builders); other packages' tests reach them here rather than through a published export.
export { amplifiedSharedViews, hostileContainers } from "../../../packages/safe-pickle/test/hostile-containers.js";
