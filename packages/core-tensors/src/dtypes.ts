import { briefly, KernelError } from "./errors.js";

/** The dtypes of the safetensors format, with their names as they appear in headers. */
export const DTYPES = ["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL"] as const;

export type DType = (typeof DTYPES)[number];

export const DTYPE_SIZE: Readonly<Record<DType, number>> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  F8_E4M3: 1,
  F8_E5M2: 1,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
};

const FLOAT_DTYPES: ReadonlySet<DType> = new Set<DType>(["F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"]);

export function isDType(name: unknown): name is DType {
  return typeof name === "string" && (DTYPES as readonly string[]).includes(name);
}

export function isFloatDType(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

export function dtypeSize(dtype: DType): number {
  const size = DTYPE_SIZE[dtype];
  if (size === undefined) throw new KernelError("DTYPE_UNKNOWN", `unknown dtype ${briefly(dtype)}`);
  return size;
}

/** Number of elements of a shape; the empty shape is a scalar with one element. */
export function shapeElementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/** Precision names used by manifests and `--precision` flags, mapped to dtypes. */
export type Precision = "fp16" | "bf16" | "fp32";

export const PRECISION_DTYPE: Readonly<Record<Precision, DType>> = { fp16: "F16", bf16: "BF16", fp32: "F32" };

export function dtypeToPrecision(dtype: DType): Precision | undefined {
  if (dtype === "F16") return "fp16";
  if (dtype === "BF16") return "bf16";
  if (dtype === "F32") return "fp32";
  return undefined;
}

/**
 * The float dtype holding most of a model's bytes: its storage precision. Counting bytes, not
 * the first "weight" key, matters: checkpoints often keep small norms in F32 beside F16 weights.
 */
export function dominantFloatDType(descriptors: readonly { readonly dtype: DType; readonly byteLength: number }[]): DType | undefined {
  const bytes = new Map<DType, number>();
  for (const d of descriptors) if (isFloatDType(d.dtype)) bytes.set(d.dtype, (bytes.get(d.dtype) ?? 0) + d.byteLength);
  let best: DType | undefined;
  for (const [dtype, n] of bytes) if (best === undefined || n > bytes.get(best)!) best = dtype;
  return best;
}
