/** FNV-1a over a string: a stable 32-bit seed from the merge seed, key name and input index. */
export function hashSeed(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** A uniform [0, 1) stream whose state can be handed to a kernel thread and taken back. */
export interface SeededRandom {
  (): number;
  /** Writes the sfc32 state [a, b, c, d] into `into` (the kernels' dareDrop continues from it). */
  saveState(into: Int32Array): void;
  /** Continues from a state written by saveState (and advanced by a kernel). */
  restoreState(from: Int32Array): void;
}

/**
 * sfc32: a small, fast generator with a 128-bit state, plenty for dropout masks. Same seed,
 * same sequence on every platform (only 32-bit integer arithmetic).
 */
export function createSeededRandom(seed: number): SeededRandom {
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
  return Object.assign(next, {
    saveState(into: Int32Array) {
      into[0] = a;
      into[1] = b;
      into[2] = c;
      into[3] = d;
    },
    restoreState(from: Int32Array) {
      [a, b, c, d] = [from[0]!, from[1]!, from[2]!, from[3]!];
    },
  });
}

/** The stream for one input of one key: depends only on (seed, key, input). */
export function randomForKey(seed: number, key: string, input: number): SeededRandom {
  return createSeededRandom(hashSeed(`${seed}\u0000${key}\u0000${input}`));
}
