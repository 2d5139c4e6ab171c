import { encodeFromF32 } from "../../../packages/core-tensors/src/index.js";

/** Largest distance in F16 units in the last place between two value lists (after F16 rounding). */
export function maxUlpF16(a: readonly number[], b: readonly number[]): number {
  const bits = (v: readonly number[]) => {
    const enc = encodeFromF32(Float32Array.from(v), "F16");
    const u = new Uint16Array(enc.buffer, enc.byteOffset, v.length);
    // Map sign-magnitude to a monotonic integer line.
    return Array.from(u, (x) => (x & 0x8000 ? -(x & 0x7fff) : x));
  };
  const x = bits(a);
  const y = bits(b);
  if (x.length !== y.length) return Infinity;
  return x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i]!)), 0);
}
