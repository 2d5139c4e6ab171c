import { describe, expect, it } from "vitest";
import { runMethod } from "../../test/run-method.js";
import { weightedSum } from "./weighted-sum.js";

describe("weighted_sum", () => {
  it("computes Σ wᵢ·xᵢ with weights as given", async () => {
    const out = await runMethod(weightedSum, [[1, 2, 3], [10, 20, 30], [100, -200, 0]], {}, { weights: [0.5, 0.3, 0.2] });
    const ref = [0.5 * 1 + 0.3 * 10 + 0.2 * 100, 0.5 * 2 + 0.3 * 20 - 0.2 * 200, 0.5 * 3 + 0.3 * 30];
    out.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 4));
  });
  it("accepts weights that do not sum to 1 and negative weights", async () => {
    expect(await runMethod(weightedSum, [[2], [4]], {}, { weights: [1, -0.5] })).toEqual([0]);
  });
  it("has normalize off by default", () => {
    expect(weightedSum.params.parse({})).toEqual({ normalize: false });
  });
});
