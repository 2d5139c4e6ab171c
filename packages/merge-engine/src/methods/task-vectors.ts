/**
 * Shared step of TIES and DARE, as mergekit's generalized task arithmetic does it: given task
 * vectors δᵢ (already trimmed or dropped) and their weights, with `electSign` the majority sign
 * per element is that of Σ wᵢδᵢ (+1 when the sum is 0) and the result is the weighted mean of
 * the deltas whose wᵢδᵢ has that sign ("disjoint mean"; 0 where none has); without it, the plain
 * weighted mean Σ wᵢδᵢ / Σ wᵢ (divisor 1 when |Σ wᵢ| < 1e-8). Writes base + λ·mean into `out`.
 */
export function combineTaskVectors(base: Float32Array, deltas: readonly Float32Array[], weights: readonly number[], lambda: number, electSign: boolean, out: Float32Array): Float32Array {
  const totalWeight = weights.reduce((s, w) => s + w, 0);
  const divisor = Math.abs(totalWeight) < 1e-8 ? 1 : totalWeight;
  const m = deltas.length;
  for (let e = 0; e < out.length; e++) {
    let sum = 0;
    for (let i = 0; i < m; i++) sum += weights[i]! * deltas[i]![e]!;
    let mean: number;
    if (electSign) {
      const positive = sum >= 0;
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        const wd = weights[i]! * deltas[i]![e]!;
        if (positive ? wd > 0 : wd < 0) {
          num += wd;
          den += weights[i]!;
        }
      }
      mean = den === 0 ? 0 : num / den;
    } else mean = sum / divisor;
    out[e] = base[e]! + lambda * mean;
  }
  return out;
}
