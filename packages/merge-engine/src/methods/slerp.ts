import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

interface SlerpState {
  dot: number;
  aa: number;
  bb: number;
}

/**
 * Spherical interpolation of two models, per tensor: with θ the angle between A and B (as
 * flat vectors), A·sin((1−t)θ)/sin θ + B·sin(tθ)/sin θ. Falls back to lerp when the tensors are
 * nearly parallel (|cos θ| > 0.9995) or one of them is zero. The dot product and both norms are
 * gathered in one streaming pass over the key's chunks, then each chunk is interpolated.
 */
export const slerp = defineMergeMethod({
  name: "slerp",
  description: "spherical interpolation A→B by t, per tensor (lerp when nearly parallel)",
  params: z.object({ t: z.number().default(0.5) }),
  arity: { min: 2, max: 2 },
  inputRoles: ["A", "B"],
  usesWeights: false,
  blockParams: ["t"],
  elementwise: false,
  statistics: {
    passes: 1,
    init: (): SlerpState => ({ dot: 0, aa: 0, bb: 0 }),
    async gather(_pass, ctx, [a, b], _params, state: SlerpState) {
      if (ctx.kernels.dotAndNorms) {
        // One read of the chunk instead of three; the same sums as the three dot products.
        const [ab, aa, bb] = await ctx.kernels.dotAndNorms(a!, b!);
        state.dot += ab;
        state.aa += aa;
        state.bb += bb;
        return;
      }
      state.dot += await ctx.kernels.dot(a!, b!);
      state.aa += await ctx.kernels.dot(a!, a!);
      state.bb += await ctx.kernels.dot(b!, b!);
    },
    // The same sums straight from the encoded bytes, when the kernels have it (and dotAndNorms,
    // which `gather` would use: the two give the same bits).
    async gatherEncoded(_pass, ctx, [a, b], _params, state: SlerpState) {
      if (!ctx.kernels.dotAndNormsEncoded || !ctx.kernels.dotAndNorms) return false;
      const [ab, aa, bb] = await ctx.kernels.dotAndNormsEncoded(a!, b!);
      state.dot += ab;
      state.aa += aa;
      state.bb += bb;
      return true;
    },
  },
  async merge(ctx, [a, b], { t }) {
    const weights = slerpWeights(ctx.statistics as SlerpState, t);
    return weights ? ctx.kernels.weightedSum([a!, b!], weights, ctx.out) : ctx.kernels.lerp(a!, b!, t, ctx.out);
  },
  // The interpolation is a weighted sum with per-tensor weights: the fused kernel on the encoded
  // bytes gives merge + encode's bits in one pass (lerp, the rare case, takes `merge`).
  async mergeEncoded(ctx, inputs, { t }, outDtype, out) {
    const weights = slerpWeights(ctx.statistics as SlerpState, t);
    return weights ? ctx.kernels.weightedSumEncoded?.(inputs, weights, outDtype, out) : undefined;
  },
});

/** A's and B's weights, sin((1−t)θ)/sin θ and sin(tθ)/sin θ, or undefined where slerp is a lerp (a zero tensor, |cos θ| > 0.9995). */
function slerpWeights({ dot, aa, bb }: SlerpState, t: number): [number, number] | undefined {
  const na = Math.sqrt(aa);
  const nb = Math.sqrt(bb);
  if (na === 0 || nb === 0) return undefined;
  const cos = Math.min(1, Math.max(-1, dot / (na * nb)));
  if (Math.abs(cos) > 0.9995) return undefined;
  const theta = Math.acos(cos);
  const s = Math.sin(theta);
  return [Math.sin((1 - t) * theta) / s, Math.sin(t * theta) / s];
}
