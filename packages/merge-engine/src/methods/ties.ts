import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";
import { combineTaskVectors } from "./task-vectors.js";

/**
 * TIES-merging (Yadav et al. 2023). The first model is the base; each other model's task
 * vector δᵢ = xᵢ − base is trimmed to its top `density` fraction by magnitude, a sign is elected
 * per element, and the agreeing deltas are averaged (weighted by the models' weights):
 * base + λ·disjoint_mean. Needs whole tensors (the top-k is per tensor).
 */
export const ties = defineMergeMethod({
  name: "ties",
  description: "base + λ·disjoint mean of top-k trimmed, sign-elected task vectors (model 0 is the base)",
  params: z.object({ density: z.number().min(0).max(1).default(0.2), lambda: z.number().default(1) }),
  arity: { min: 2 },
  usesWeights: true,
  blockParams: ["density", "lambda"],
  elementwise: false,
  async merge(ctx, [base, ...models], { density, lambda }) {
    const k = ctx.kernels;
    const keep = Math.round(density * base!.length);
    for (const x of models) {
      await k.sub(x, base!, x);
      const threshold = await k.topKThreshold(x, keep);
      for (let e = 0; e < x.length; e++) if (!(Math.abs(x[e]!) >= threshold)) x[e] = 0;
    }
    return combineTaskVectors(base!, models, ctx.weights.slice(1), lambda, true, ctx.out);
  },
});
