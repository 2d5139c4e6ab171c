import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/** A + α·(B − C): adds what B learned relative to C onto A. */
export const addDifference = defineMergeMethod({
  name: "add_difference",
  description: "A + α·(B − C)",
  params: z.object({ alpha: z.number().default(1) }),
  arity: { min: 3, max: 3 },
  inputRoles: ["A", "B", "C"],
  usesWeights: false,
  blockParams: ["alpha"],
  elementwise: true,
  async merge(ctx, [a, b, c], { alpha }) {
    const k = ctx.kernels;
    await k.sub(b!, c!, ctx.out);
    await k.scale(ctx.out, alpha, ctx.out);
    return k.add(a!, ctx.out, ctx.out);
  },
  // The same three steps on the encoded bytes in one pass, when the kernels have it (merge +
  // encode's bytes, without F32 copies of the inputs).
  mergeEncoded: async (ctx, [a, b, c], { alpha }, outDtype, out) => ctx.kernels.addDifferenceEncoded?.(a!, b!, c!, alpha, outDtype, out),
});
