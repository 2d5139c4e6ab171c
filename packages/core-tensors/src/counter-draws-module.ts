/**
 * DARE's counter-based draws, the one definition: draw `index` (an integer, 0 ≤ index < 2^53) of
 * stream `seed` (a u32) is lowbias32((index mod 2^32) ^ key), key = lowbias32(seed ^
 * lowbias32(⌊index / 2^32⌋)), a u32. Any draw is computed on its own, so a tensor's elements can be
 * drawn in any order, chunk or thread. lowbias32 is Wellons' two-multiply 32-bit mix (hash
 * prospector), a bijection with near-ideal avalanche. The WebAssembly kernels (dareMerge16,
 * dareMerge2) compute the same bits.
 *
 * Like `floatCodecsModule`, this function is serialised with `toString()` into the worker source
 * (see kernel-worker-source.ts), so it references only globals.
 */
export function counterDrawsModule() {
  const lowbias32 = (x: number): number => {
    x ^= x >>> 16;
    x = Math.imul(x, 0x7feb352d);
    x ^= x >>> 15;
    x = Math.imul(x, 0x846ca68b);
    x ^= x >>> 16;
    return x >>> 0;
  };
  /** The key of stream `seed`'s draws at indices hi·2^32 … hi·2^32 + 2^32 − 1. */
  const drawKey = (seed: number, hi: number): number => lowbias32((seed ^ lowbias32(hi)) >>> 0);
  /** The draw at `index` of stream `seed`, as a u32. */
  const drawBits = (seed: number, index: number): number => lowbias32(((index >>> 0) ^ drawKey(seed, Math.floor(index / 4294967296))) >>> 0);
  return { lowbias32, drawKey, drawBits };
}

export type CounterDraws = ReturnType<typeof counterDrawsModule>;

const local = counterDrawsModule();

/** Draw `index` of the counter-based stream `seed` (see counterDrawsModule), a u32: DARE drops element e of a key when drawBits(s, e) / 2^32 < p. */
export function drawBits(seed: number, index: number): number {
  return local.drawBits(seed, index);
}
