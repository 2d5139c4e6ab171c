import { describe, expect, it } from "vitest";
import { runMethod } from "../../test/run-method.js";
import { consensus, consensusWeights } from "./consensus.js";

// Values checked by running the Python tool (stmerge-inventory.md §2.2).
describe("consensus", () => {
  it("reproduces the Python tool's weights", () => {
    expect(consensusWeights([1, 2, 3], 4)).toEqual([0, 1, 0]);
    const w = consensusWeights([1, 1.1, 1.05, 5], 4);
    [0.322, 0.339, 0.339, 0].forEach((x, i) => expect(w[i]).toBeCloseTo(x, 3));
    expect(consensusWeights([1, 1.1, 5, 5.1], 2)).toEqual([0, 0.5, 0.5, 0]);
    consensusWeights([1, 1, 1, 1.3], 4).forEach((x, i) => expect(x).toBeCloseTo(i < 3 ? 1 / 3 : 0, 6));
  });

  it("merges per element, including scalars and 0-d tensors", async () => {
    const out = await runMethod(consensus, [[1, 1, 1], [2, 1.1, 1], [3, 5, 1.3]], {}, { shape: [3] });
    expect(out[0]).toBeCloseTo(2, 6);
    expect(out[2]).toBeCloseTo(1, 6);
    const scalar = await runMethod(consensus, [[1], [1.1], [1.05], [5]], { exponent: 4 }, { shape: [] });
    expect(scalar[0]).toBeCloseTo(1.0509, 3);
    expect(await runMethod(consensus, [[1], [1.1], [5], [5.1]], { exponent: 2 }, { shape: [] })).toEqual([Math.fround(3.05)]);
  });

  it("is an exact average for two models and ignores user weights", async () => {
    expect(await runMethod(consensus, [[1, 4], [3, 8]], {}, { weights: [0.9, 0.1] })).toEqual([2, 6]);
  });

  it("returns a single model unchanged", async () => {
    expect(await runMethod(consensus, [[1.5, -2]])).toEqual([1.5, -2]);
  });
});
