import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/**
 * Spherical interpolation of two models, per tensor: with θ the angle between A and B (as
 * flat vectors), A·sin((1−t)θ)/sin θ + B·sin(tθ)/sin θ. Falls back to lerp when the tensors are
 * nearly parallel (|cos θ| > 0.9995) or one of them is zero.
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
  async merge(ctx, [a, b], { t }) {
    const k = ctx.kernels;
    const na = await k.norm(a!);
    const nb = await k.norm(b!);
    if (na === 0 || nb === 0) return k.lerp(a!, b!, t, ctx.out);
    const cos = Math.min(1, Math.max(-1, (await k.dot(a!, b!)) / (na * nb)));
    if (Math.abs(cos) > 0.9995) return k.lerp(a!, b!, t, ctx.out);
    const theta = Math.acos(cos);
    const s = Math.sin(theta);
    return k.weightedSum([a!, b!], [Math.sin((1 - t) * theta) / s, Math.sin(t * theta) / s], ctx.out);
  },
});
