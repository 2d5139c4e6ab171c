/**
 * Shared step of TIES and DARE: given task vectors δᵢ (already trimmed or dropped) and their
 * weights, elect a sign per element (sign of Σ wᵢδᵢ) and take the weighted mean of the deltas
 * that agree with it ("disjoint mean"). Without `electSign` it is the plain weighted mean.
 * Writes base + λ·mean into `out`.
 */
export function combineTaskVectors(base: Float32Array, deltas: readonly Float32Array[], weights: readonly number[], lambda: number, electSign: boolean, out: Float32Array): Float32Array {
  const totalWeight = weights.reduce((s, w) => s + w, 0);
  for (let e = 0; e < out.length; e++) {
    let sum = 0;
    for (let i = 0; i < deltas.length; i++) sum += weights[i]! * deltas[i]![e]!;
    let mean: number;
    if (electSign) {
      const elected = Math.sign(sum);
      let num = 0;
      let den = 0;
      for (let i = 0; i < deltas.length; i++) {
        const d = deltas[i]![e]!;
        if (d !== 0 && Math.sign(d) === elected) {
          num += weights[i]! * d;
          den += weights[i]!;
        }
      }
      mean = den === 0 ? 0 : num / den;
    } else mean = totalWeight === 0 ? 0 : sum / totalWeight;
    out[e] = base[e]! + lambda * mean;
  }
  return out;
}
