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
 * sfc32: a small, fast generator with a 128-bit state, plenty for dropout masks. Same seed,
 * same sequence on every platform (only 32-bit integer arithmetic).
 */
export function createSeededRandom(seed: number): () => number {
  let a = 0x9e3779b9;
  let b = 0x243f6a88;
  let c = 0xb7e15162;
  let d = seed >>> 0;
  const next = (): number => {
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  // Mix the seed through the state before use, so nearby seeds give unrelated streams.
  for (let i = 0; i < 12; i++) next();
  return next;
}

/** The stream for one input of one key: depends only on (seed, key, input). */
export function randomForKey(seed: number, key: string, input: number): () => number {
  return createSeededRandom(hashSeed(`${seed}\u0000${key}\u0000${input}`));
}
