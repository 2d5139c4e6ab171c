import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/**
 * Σ wᵢ·xᵢ accumulated in F32, weights as given (the plan warns when they do not sum to 1 and
 * rescales them when `normalize` is set).
 */
export const weightedSum = defineMergeMethod({
  name: "weighted_sum",
  description: "Σ wᵢ·xᵢ over all models, accumulated in F32",
  params: z.object({ normalize: z.boolean().default(false) }),
  arity: { min: 1 },
  usesWeights: true,
  blockParams: [],
  elementwise: true,
  normalizable: true,
  merge: (ctx, tensors) => ctx.kernels.weightedSum(tensors, ctx.weights, ctx.out),
  // One fused pass over the raw bytes when the backend has it (bit-identical to merge + encode).
  mergeEncoded: async (ctx, inputs, _params, outDtype, out) => ctx.kernels.weightedSumEncoded?.(inputs, ctx.weights, outDtype, out),
});
