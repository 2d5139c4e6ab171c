/** Deterministic pseudo-random F32 values in [-scale, scale) (an LCG, so every run sees the same data). */
export function randomValues(length: number, seed: number, scale = 4): Float32Array {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 * scale;
  }
  return out;
}
