/** FNV-1a over a string: a stable 32-bit seed from the merge seed, key name and input index. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * lowbias32 (Wellons' hash prospector): a 32-bit integer mix with near-ideal avalanche, two
 * multiplies. A bijection, so lowbias32(0) = 0.
 */
function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * Draw `index` (an integer, 0 ≤ index < 2^53) of the counter-based stream `seed` (a u32), as a
 * u32: lowbias32((index mod 2^32) ^ key), key = lowbias32(seed ^ lowbias32(⌊index / 2^32⌋)).
 * Any draw is computed on its own, so a tensor's elements can be drawn in any order, chunk or
 * thread: the kernels (core-tensors' dareMergeEncoded, dareDrop) compute the same bits.
 */
export function drawBits(seed: number, index: number): number {
  const key = lowbias32((seed ^ lowbias32(Math.floor(index / 4294967296))) >>> 0);
  return lowbias32(((index >>> 0) ^ key) >>> 0);
}

/** A uniform [0, 1) stream: draw n of the counter-based stream `seed` on its n-th call. */
export interface SeededRandom {
  (): number;
  /** The stream's seed, for drawBits(seed, index) (DARE draws element e of a key at index e). */
  readonly seed: number;
}

/** Same seed, same sequence on every platform (only 32-bit integer arithmetic). */
export function createSeededRandom(seed: number): SeededRandom {
  const s = seed >>> 0;
  let n = 0;
  return Object.assign(() => drawBits(s, n++) / 4294967296, { seed: s });
}

/** The stream for one input of one key: depends only on (seed, key, input). */
export function randomForKey(seed: number, key: string, input: number): SeededRandom {
  return createSeededRandom(hashSeed(`${seed}\u0000${key}\u0000${input}`));
}
