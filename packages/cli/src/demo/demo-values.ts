/** Deterministic pseudo-random values (mulberry32) so every demo run writes identical models. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function hashString(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}

/** Values of a demo tensor: a shared base per key plus a per-model variation, like fine-tunes of one model. */
export function demoTensorValues(key: string, count: number, modelSeed: number, variation: number): Float32Array {
  const base = seededRandom(hashString(key));
  const own = seededRandom(hashString(key) ^ modelSeed);
  const values = new Float32Array(count);
  for (let i = 0; i < count; i++) values[i] = (base() * 2 - 1) * 0.1 + (own() * 2 - 1) * 0.1 * variation;
  return values;
}
