import { decodeToF32, dtypeSize, type DType } from "../../../packages/core-tensors/src/index.js";

/**
 * The index of the first element whose encoded bytes differ between `a` and `b` (both `dtype`),
 * or −1 when none does. Two NaNs count as equal whatever their sign and payload: V8 may order a
 * commutative operation's operands differently from one compiler tier to the next, and a NaN's
 * sign and payload follow the operand order.
 */
export function firstEncodedDifference(a: Uint8Array, b: Uint8Array, dtype: DType): number {
  if (a.byteLength !== b.byteLength) return Math.min(a.byteLength, b.byteLength) / dtypeSize(dtype);
  const x = decodeToF32(a, dtype);
  const y = decodeToF32(b, dtype);
  const size = dtypeSize(dtype);
  for (let i = 0; i < x.length; i++) {
    if (Number.isNaN(x[i]) && Number.isNaN(y[i])) continue;
    for (let j = i * size; j < (i + 1) * size; j++) if (a[j] !== b[j]) return i;
  }
  return -1;
}
