import { defineMergeMethod } from "@stmerge/merge-engine";
import { z } from "zod";

/**
 * Per-element median of all models: robust to one outlier model, unlike the mean. With an even
 * number of models it averages the two middle values. Weights are ignored.
 */
export const median = defineMergeMethod({
  name: "median",
  description: "per-element median of all models (weights ignored)",
  params: z.object({}),
  arity: { min: 1 },
  usesWeights: false,
  blockParams: [],
  elementwise: true,
  async merge(ctx, tensors) {
    const n = tensors.length;
    const column = new Float64Array(n);
    const out = ctx.out;
    for (let e = 0; e < out.length; e++) {
      for (let i = 0; i < n; i++) column[i] = tensors[i]![e]!;
      column.sort();
      const mid = n >> 1;
      out[e] = n % 2 === 1 ? column[mid]! : (column[mid - 1]! + column[mid]!) / 2;
    }
    return out;
  },
});
