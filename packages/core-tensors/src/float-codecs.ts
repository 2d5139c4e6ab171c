import { DTYPE_SIZE, isFloatDType, type DType } from "./dtypes.js";
import { briefly, dtypeNotEncodable, KernelError } from "./errors.js";
import { localCodecs } from "./local-kernels.js";

/**
 * Synchronous float conversions on the calling thread, for small arrays and single values.
 * Large tensors go through `KernelBackend.decode/encode`, which split the same code across
 * worker threads. Semantics (rounding, NaN, overflow) are described in float-codecs-module.ts.
 */

function checkDType(dtype: DType): number {
  const code = localCodecs().DTYPE_CODE[dtype];
  if (code === undefined) throw new KernelError("DTYPE_UNKNOWN", `unknown dtype ${briefly(dtype)}`);
  return code;
}

/** Decodes little-endian bytes of any safetensors dtype to F32 (integers and BOOL by value). */
export function decodeToF32(bytes: Uint8Array, dtype: DType, out?: Float32Array): Float32Array {
  const code = checkDType(dtype);
  const size = DTYPE_SIZE[dtype];
  if (bytes.byteLength % size !== 0) throw new KernelError("KERNEL_LENGTH_MISMATCH", `decode ${dtype}: ${bytes.byteLength} bytes is not a whole number of ${size}-byte elements`);
  const length = bytes.byteLength / size;
  const target = out ?? new Float32Array(length);
  if (target.length !== length) throw new KernelError("KERNEL_LENGTH_MISMATCH", `decode ${dtype}: output holds ${target.length} values, input has ${length}`);
  // Typed views need aligned offsets; tensor bytes sliced out of a file may not be.
  const source = bytes.byteOffset % size === 0 ? bytes : bytes.slice();
  localCodecs().decodeRange(source, code, target, 0, length);
  return target;
}

/** Encodes F32 values to a float dtype with round-to-nearest-even. */
export function encodeFromF32(values: Float32Array, dtype: DType, out?: Uint8Array): Uint8Array {
  const code = checkDType(dtype);
  if (!isFloatDType(dtype)) throw dtypeNotEncodable("encode", dtype);
  const size = DTYPE_SIZE[dtype];
  const byteLength = values.length * size;
  const target = out ?? new Uint8Array(byteLength);
  if (target.byteLength !== byteLength) throw new KernelError("KERNEL_LENGTH_MISMATCH", `encode ${dtype}: output holds ${target.byteLength} bytes, needs ${byteLength}`);
  const direct = target.byteOffset % size === 0;
  const dst = direct ? target : new Uint8Array(byteLength);
  localCodecs().encodeRange(values, code, dst, 0, values.length);
  if (!direct) target.set(dst);
  return target;
}

/** Converts between any two dtypes through F32 (the target must be a float dtype). */
export function convertDType(bytes: Uint8Array, from: DType, to: DType): Uint8Array {
  if (from === to) return bytes.slice();
  return encodeFromF32(decodeToF32(bytes, from), to);
}

/** F16 bits → F32 value. */
export function f16BitsToF32(bits: number): number {
  return localCodecs().f32FromBits(localCodecs().f16BitsToF32Bits(bits));
}

/** F32 value → F16 bits (round to nearest even, overflow to ±Inf). */
export function f32ToF16Bits(value: number): number {
  const c = localCodecs();
  return c.f32BitsToF16Bits(c.bitsFromF32(value));
}

/** BF16 bits → F32 value. */
export function bf16BitsToF32(bits: number): number {
  return localCodecs().f32FromBits(((bits & 0xffff) << 16) >>> 0);
}

/** F32 value → BF16 bits (round to nearest even). */
export function f32ToBF16Bits(value: number): number {
  const c = localCodecs();
  return c.f32BitsToBF16Bits(c.bitsFromF32(value));
}
