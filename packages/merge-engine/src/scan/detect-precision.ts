import { dtypeToPrecision, isFloatDType, type DType, type TensorDescriptor } from "@stmerge/core-tensors";

/**
 * The precision of a model as manifests name it: the float dtype holding most of its bytes
 * (the Python tool looked at the first "weight" key only, which is often a small F32 norm).
 */
export function detectPrecision(descriptors: readonly Pick<TensorDescriptor, "dtype" | "byteLength">[]): "fp16" | "bf16" | "fp32" | "unknown" {
  const bytes = new Map<DType, number>();
  for (const d of descriptors) if (isFloatDType(d.dtype)) bytes.set(d.dtype, (bytes.get(d.dtype) ?? 0) + d.byteLength);
  let best: DType | undefined;
  for (const [dtype, n] of bytes) if (best === undefined || n > bytes.get(best)!) best = dtype;
  return (best && dtypeToPrecision(best)) ?? "unknown";
}
