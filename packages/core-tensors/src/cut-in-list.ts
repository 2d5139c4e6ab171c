import { localOps, simdKernelsAvailable } from "./local-kernels.js";

// TIES's selection steps on the calling thread (merge-engine's ties runs them between its kernel
// passes, on the main thread, where they delay the next pass): the WebAssembly SIMD ops where the
// engine has them, else the JavaScript ones (kernel-ops-module), which give the same results.
const ops = () => localOps(simdKernelsAvailable());

/**
 * TIES's cut among the magnitudes a window pass listed (F32 bits, all in [lo, hi]): the `need`-th
 * largest (1 ≤ need ≤ values.length), and how many equal to it are kept (`need` minus those above
 * it). Linear in the list, which may hold millions of values; a value outside [lo, hi] breaks
 * the contract (the result is then meaningless, but no memory outside the op's is touched).
 */
export function cutInList(values: Uint32Array, lo: number, hi: number, need: number): [threshold: number, atThreshold: number] {
  return ops().cutInList!([values], 0, values.length, { lo, hi, need }) as [number, number];
}

/** How many of values[from…to) equal `value`. */
export function countEqual(values: Uint32Array, from: number, to: number, value: number): number {
  return ops().countEqual!([values], from, to, { value }) as number;
}

/**
 * The bin of `histogram` holding the `need`-th largest value, counting down from bin `top` (those
 * above it are empty), and how many values lie in the bins above it; bin 0 when fewer are counted.
 */
export function binOfRank(histogram: Uint32Array, top: number, need: number): [bin: number, above: number] {
  return localOps().binOfRank!([histogram], 0, top + 1, { need }) as [number, number];
}
