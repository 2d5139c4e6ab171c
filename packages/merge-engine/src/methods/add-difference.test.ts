import { describe, expect, it } from "vitest";
import { randomArray, runMethod } from "../../test/run-method.js";
import { addDifference } from "./add-difference.js";
import { trainDifference } from "./train-difference.js";

describe("add_difference", () => {
  it("computes A + α(B − C)", async () => {
    const [a, b, c] = [randomArray(50, 1), randomArray(50, 2), randomArray(50, 3)];
    const out = await runMethod(addDifference, [a, b, c], { alpha: 0.7 });
    out.forEach((v, i) => expect(v).toBeCloseTo(a[i]! + 0.7 * (b[i]! - c[i]!), 5));
  });
  it("defaults α to 1 and rejects a non-number", () => {
    expect(addDifference.params.parse({})).toEqual({ alpha: 1 });
    expect(() => addDifference.params.parse({ alpha: "x" })).toThrow();
  });
});

describe("train_difference", () => {
  it("matches SuperMerger's formula element by element", async () => {
    const [a, b, c] = [randomArray(64, 4), randomArray(64, 5), randomArray(64, 6)];
    const out = await runMethod(trainDifference, [a, b, c], { alpha: 0.5 });
    out.forEach((v, i) => {
      const d = b[i]! - c[i]!;
      const ref = a[i]! + (0.5 * 1.8 * d * Math.abs(b[i]! - a[i]!)) / (Math.abs(b[i]! - a[i]!) + Math.abs(d));
      expect(v).toBeCloseTo(ref, 5);
    });
  });
  it("keeps A where A = B = C, and where B = C", async () => {
    expect(await runMethod(trainDifference, [[1, 2], [1, 5], [1, 5]])).toEqual([1, 2]);
  });
});
