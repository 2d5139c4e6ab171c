/**
 * Shared step of TIES and DARE, as mergekit's generalized task arithmetic does it: given task
 * vectors δᵢ (already trimmed or dropped) and their weights, with `electSign` the majority sign
 * per element is that of Σ wᵢδᵢ (+1 when the sum is 0) and the result is the weighted mean of
 * the deltas whose wᵢδᵢ has that sign ("disjoint mean"; 0 where none has); without it, the plain
 * weighted mean Σ wᵢδᵢ / Σ wᵢ (divisor 1 when |Σ wᵢ| < 1e-8). Writes base + λ·mean into `out`.
 * In F32 like mergekit on F32 tensors: the weights, λ and 1e-8 rounded to F32, every sum in
 * task-vector order from +0, each operation rounded (fround of an F64 +, ×, ÷ on F32 values is
 * the F32 operation's result).
 */
export function combineTaskVectors(base: Float32Array, deltas: readonly Float32Array[], weights: readonly number[], lambda: number, electSign: boolean, out: Float32Array): Float32Array {
  const w = weights.map(Math.fround);
  const lambda32 = Math.fround(lambda);
  const totalWeight = w.reduce((s, x) => Math.fround(s + x), 0);
  const divisor = Math.abs(totalWeight) < Math.fround(1e-8) ? 1 : totalWeight;
  const m = deltas.length;
  const wds = new Float64Array(m);
  for (let e = 0; e < out.length; e++) {
    let sum = 0;
    for (let i = 0; i < m; i++) {
      wds[i] = Math.fround(w[i]! * deltas[i]![e]!);
      sum = Math.fround(sum + wds[i]!);
    }
    let mean: number;
    if (electSign) {
      const positive = sum >= 0;
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        const wd = wds[i]!;
        if (positive ? wd > 0 : wd < 0) {
          num = Math.fround(num + wd);
          den = Math.fround(den + w[i]!);
        }
      }
      mean = den === 0 ? 0 : Math.fround(num / den);
    } else mean = Math.fround(sum / divisor);
    out[e] = base[e]! + Math.fround(lambda32 * mean);
  }
  return out;
}
