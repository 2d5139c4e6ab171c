import { dominantFloatDType, dtypeToPrecision, type TensorDescriptor } from "@stmerge/core-tensors";

/**
 * The precision of a model as manifests name it: the float dtype holding most of its bytes
 * (the Python tool looked at the first "weight" key only, which is often a small F32 norm).
 */
export function detectPrecision(descriptors: readonly Pick<TensorDescriptor, "dtype" | "byteLength">[]): "fp16" | "bf16" | "fp32" | "unknown" {
  const dtype = dominantFloatDType(descriptors);
  return (dtype && dtypeToPrecision(dtype)) ?? "unknown";
}
