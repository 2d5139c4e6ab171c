import { drawBits } from "@stmerge/core-tensors";

/** FNV-1a over a string: a stable 32-bit seed from the merge seed, key name and input index. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform [0, 1) stream: draw n of the counter-based stream `seed` (core-tensors' drawBits) on its n-th call, / 2^32. */
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
