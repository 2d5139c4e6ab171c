import { describe, expect, it } from "vitest";
import { z } from "zod";
import { addDifference } from "./add-difference.js";
import { checkParamNames, methodParamNames } from "./check-param-names.js";
import { defineMergeMethod } from "./merge-method.js";
import { ties } from "./ties.js";
import { weightedSum } from "./weighted-sum.js";

describe("checkParamNames", () => {
  it("refuses a misspelt parameter with a suggestion and the method's parameters", () => {
    expect(() => checkParamNames(addDifference, { alpah: 0.3 })).toThrow(
      expect.objectContaining({ code: "MERGE_UNKNOWN_PARAM", message: 'merge_params.alpah: add_difference has no parameter "alpah" (did you mean "alpha"?); its parameters: alpha' }),
    );
    expect(() => checkParamNames(ties, { densty: 0.9 })).toThrow(expect.objectContaining({ message: expect.stringContaining('(did you mean "density"?); its parameters: density, lambda') }));
  });
  it("refuses a parameter of another method without a false suggestion", () => {
    expect(() => checkParamNames(weightedSum, { alpha: 0.5 })).toThrow(expect.objectContaining({ message: 'merge_params.alpha: weighted_sum has no parameter "alpha"; its parameters: normalize' }));
  });
  it("accepts the method's own parameters, and leaves a plugin's non-object validator to itself", () => {
    expect(() => checkParamNames(ties, { density: 0.5, lambda: 1 })).not.toThrow();
    const plugin = defineMergeMethod({ name: "p", description: "", params: z.any() as never, arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true, merge: async (ctx) => ctx.out });
    expect(methodParamNames(plugin)).toBeUndefined();
    expect(() => checkParamNames(plugin, { anything: 1 })).not.toThrow();
  });
});
