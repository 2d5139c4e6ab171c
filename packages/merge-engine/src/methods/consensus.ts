import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/**
 * The Python tool's consensus merge (inverse-distance weighting), element by element: each
 * model's value gets weight (1 − norm_avg_dist)^E, where avg_dist is its mean absolute distance
 * to the other values, normalised to [0, 1] over the models: the farthest gets weight exactly 0.
 * Columns whose mean distances are all equal (within 1e-10) use equal weights, as does E = 0.
 * User weights are ignored. Works on scalars and 0-d tensors like any other tensor. In F64, in
 * the order of core-tensors' consensus kernel (kernel-ops-module), which the loop below repeats
 * for backends without it: n times the mean distances, weights ((max − s)·r)^E with
 * r = 1 / (max − min) (1 − norm without its cancellation), the power by squaring.
 */
export const consensus = defineMergeMethod({
  name: "consensus",
  description: "per-element inverse-distance weighting; outliers get weight 0 (user weights ignored)",
  params: z.object({ exponent: z.number().int().min(0).max(0x7fffffff).default(4) }),
  arity: { min: 1 },
  usesWeights: false,
  blockParams: [],
  elementwise: true,
  manifestFields: { exponent: "consensus_exponent" },
  async merge(ctx, tensors, { exponent }) {
    // On the kernel threads when the backend has the kernel; below, the reference on this thread.
    if (ctx.kernels.consensus) return ctx.kernels.consensus(tensors, exponent, ctx.out);
    const n = tensors.length;
    const out = ctx.out;
    const values = new Float64Array(n);
    const sums = new Float64Array(n);
    const flatBelow = n * 1e-10;
    for (let e = 0; e < out.length; e++) {
      for (let i = 0; i < n; i++) values[i] = tensors[i]![e]!;
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) if (j !== i) s += Math.abs(values[i]! - values[j]!);
        sums[i] = s;
        if (s < min) min = s;
        if (s > max) max = s;
      }
      const flat = exponent === 0 || max - min < flatBelow;
      const r = 1 / (max - min);
      let acc = 0;
      let total = 0;
      for (let i = 0; i < n; i++) {
        const w = flat ? 1 : powerBySquaring((max - sums[i]!) * r, exponent);
        acc = i === 0 ? values[i]! * w : acc + values[i]! * w;
        total = i === 0 ? w : total + w;
      }
      out[e] = acc / total;
    }
    return out;
  },
  // One pass over the raw bytes when the backend has it (the same bytes as merge + encode).
  mergeEncoded: async (ctx, inputs, { exponent }, outDtype, out) => ctx.kernels.consensusEncoded?.(inputs, exponent, outDtype, out),
});

/** b^e (e ≥ 1): b squared while e is even, then each further square multiplied in per set bit. */
function powerBySquaring(b: number, e: number): number {
  let square = b;
  let rest = e;
  while ((rest & 1) === 0) {
    square *= square;
    rest >>>= 1;
  }
  let w = square;
  for (rest >>>= 1; rest > 0; rest >>>= 1) {
    square *= square;
    if (rest & 1) w *= square;
  }
  return w;
}
