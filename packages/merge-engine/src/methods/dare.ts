import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";
import { combineTaskVectors } from "./task-vectors.js";

/**
 * DARE (Yu et al. 2023). The first model is the base; each element of each task vector
 * δᵢ = xᵢ − base is dropped with probability p and the survivors are rescaled by 1/(1 − p). The
 * masks come from a stream seeded by (seed, key, model), so a merge is reproducible. The result
 * is base + λ·(weighted mean of the δ̃ᵢ), or with `ties` the sign-elected disjoint mean.
 */
export const dare = defineMergeMethod({
  name: "dare",
  description: "base + λ·mean of randomly dropped and rescaled task vectors (model 0 is the base; seeded)",
  params: z.object({
    drop_rate: z.number().min(0).lt(1).default(0.5),
    lambda: z.number().default(1),
    seed: z.number().int().default(0),
    ties: z.boolean().default(false),
  }),
  arity: { min: 2 },
  usesWeights: true,
  baseWeightIgnored: true,
  blockParams: ["drop_rate", "lambda"],
  elementwise: true,
  seeded: true,
  async merge(ctx, [base, ...models], { drop_rate: p, lambda, ties }) {
    const k = ctx.kernels;
    if (k.dareDrop && k.combineTaskVectors) {
      // On the kernel threads: each task vector's drop on its own thread (the stream is
      // sequential; its state goes there and back), then the combine split across the threads.
      const tasks = models.map((x, i) => {
        const state = new Int32Array(4);
        ctx.random(i + 1).saveState(state);
        return { x, base: base!, state };
      });
      await k.dareDrop(tasks, p);
      tasks.forEach(({ state }, i) => ctx.random(i + 1).restoreState(state));
      return k.combineTaskVectors(base!, models, ctx.weights.slice(1), lambda, ties, ctx.out);
    }
    // The reference, on this thread.
    const rescale = 1 / (1 - p);
    for (let i = 0; i < models.length; i++) {
      const x = models[i]!;
      const random = ctx.random(i + 1);
      for (let e = 0; e < x.length; e++) x[e] = random() < p ? 0 : (x[e]! - base![e]!) * rescale;
    }
    return combineTaskVectors(base!, models, ctx.weights.slice(1), lambda, ties, ctx.out);
  },
  // The same merge on the encoded bytes, encoded straight into the output dtype (kernels
  // without it, or with LoRAs to add, take `merge`): keep masks drawn from the same streams,
  // no F32 copies of the inputs.
  async mergeEncoded(ctx, [base, ...models], { drop_rate: p, lambda, ties }, outDtype, out) {
    if (!ctx.kernels.dareMergeEncoded) return undefined;
    const states = models.map((_, i) => {
      const state = new Int32Array(4);
      ctx.random(i + 1).saveState(state);
      return state;
    });
    await ctx.kernels.dareMergeEncoded(base!, models, states, p, ctx.weights.slice(1), lambda, ties, outDtype, out);
    states.forEach((state, i) => ctx.random(i + 1).restoreState(state));
    return out;
  },
});
