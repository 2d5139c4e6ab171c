import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/**
 * The Python tool's consensus merge (inverse-distance weighting), element by element: each
 * model's value gets weight (1 − norm_avg_dist)^E, where avg_dist is its mean absolute distance
 * to all values (itself included) normalised to [0, 1] over the models; outliers get weight 0.
 * Columns whose distances are all equal (within 1e-10) use equal weights. User weights are
 * ignored. Works on scalars and 0-d tensors like any other tensor.
 */
export const consensus = defineMergeMethod({
  name: "consensus",
  description: "per-element inverse-distance weighting; outliers get weight 0 (user weights ignored)",
  params: z.object({ exponent: z.number().int().min(0).default(4) }),
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
    const avg = new Float64Array(n);
    for (let e = 0; e < out.length; e++) {
      for (let i = 0; i < n; i++) values[i] = tensors[i]![e]!;
      let min = Infinity;
      let max = -Infinity;
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += Math.abs(values[i]! - values[j]!);
        const d = s / n;
        avg[i] = d;
        if (d < min) min = d;
        if (d > max) max = d;
      }
      const range = max - min;
      let acc = 0;
      if (range < 1e-10) {
        for (let i = 0; i < n; i++) acc += values[i]!;
        out[e] = acc / n;
        continue;
      }
      let total = 0;
      for (let i = 0; i < n; i++) {
        const w = (1 - (avg[i]! - min) / range) ** exponent;
        total += w;
        acc += values[i]! * w;
      }
      out[e] = acc / total;
    }
    return out;
  },
});
