import { drawBits } from "@stmerge/core-tensors";
import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";
import { combineTaskVectors } from "./task-vectors.js";

/**
 * DARE (Yu et al. 2023), as mergekit's dare_linear and dare_ties compute it on F32 tensors. The
 * first model is the base; each element of each task vector δᵢ = xᵢ − base is dropped with
 * probability p and the survivors are divided by the density 1 − p (in F32: the difference
 * rounded, the density rounded, the quotient rounded).
 * Element e of a key is dropped when draw e of the counter-based stream seeded by (seed, key,
 * model) is below p (drawBits / 2^32), so a merge is reproducible whatever the chunks and
 * threads, and the kernel threads draw each range's masks themselves. The result
 * is base + λ·(weighted mean of the δ̃ᵢ), or with `ties` the sign-elected disjoint mean, in F32
 * in mergekit's order (combineTaskVectors).
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
    const seeds = models.map((_, i) => ctx.random(i + 1).seed);
    if (k.dareDrop && k.combineTaskVectors) {
      // On the kernel threads: the drops split across the threads, then the combine.
      await k.dareDrop(models.map((x, i) => ({ x, base: base!, seed: seeds[i]! })), p, ctx.offset);
      return k.combineTaskVectors(base!, models, ctx.weights.slice(1), lambda, ties, ctx.out);
    }
    // The reference, on this thread.
    const density = Math.fround(1 - p);
    for (let i = 0; i < models.length; i++) {
      const x = models[i]!;
      for (let e = 0; e < x.length; e++) x[e] = drawBits(seeds[i]!, ctx.offset + e) / 4294967296 < p ? 0 : Math.fround(x[e]! - base![e]!) / density;
    }
    return combineTaskVectors(base!, models, ctx.weights.slice(1), lambda, ties, ctx.out);
  },
  // The same merge on the encoded bytes, encoded straight into the output dtype (kernels
  // without it, or with LoRAs to add, take `merge`): the same draws, made in the kernel, no F32
  // copies of the inputs.
  async mergeEncoded(ctx, [base, ...models], { drop_rate: p, lambda, ties }, outDtype, out) {
    if (!ctx.kernels.dareMergeEncoded) return undefined;
    const seeds = models.map((_, i) => ctx.random(i + 1).seed);
    await ctx.kernels.dareMergeEncoded(base!, models, seeds, ctx.offset, p, ctx.weights.slice(1), lambda, ties, outDtype, out);
    return out;
  },
});
