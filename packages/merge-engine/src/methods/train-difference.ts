import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/**
 * SuperMerger's trainDifference: A + α·1.8·(B − C)·|B − A| / (|B − A| + |B − C|). Elements where
 * the denominator is zero (A = B = C) keep A.
 */
export const trainDifference = defineMergeMethod({
  name: "train_difference",
  description: "A + α·1.8·(B − C)·|B − A| / (|B − A| + |B − C|)",
  params: z.object({ alpha: z.number().default(1) }),
  arity: { min: 3, max: 3 },
  inputRoles: ["A", "B", "C"],
  usesWeights: false,
  blockParams: ["alpha"],
  elementwise: true,
  async merge(ctx, [a, b, c], { alpha }) {
    const out = ctx.out;
    const scale = 1.8 * alpha;
    // The reference, in one pass on this thread (the kernels' trainDifferenceEncoded does the same
    // F64 operations on the encoded bytes, on the kernel threads).
    for (let i = 0; i < out.length; i++) {
      const ai = a![i]!;
      const diff = b![i]! - c![i]!;
      const dist = Math.abs(b![i]! - ai);
      const denom = dist + Math.abs(diff);
      out[i] = denom === 0 ? ai : ai + (scale * diff * dist) / denom;
    }
    return out;
  },
  mergeEncoded: async (ctx, [a, b, c], { alpha }, outDtype, out) => ctx.kernels.trainDifferenceEncoded?.(a!, b!, c!, 1.8 * alpha, outDtype, out),
});
