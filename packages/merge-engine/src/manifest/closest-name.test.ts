import { describe, expect, it } from "vitest";
import { closestName, didYouMean, editDistance } from "./closest-name.js";

describe("closestName", () => {
  it("counts insertions, deletions, substitutions and adjacent swaps as one edit each", () => {
    expect(editDistance("alpah", "alpha")).toBe(1);
    expect(editDistance("densty", "density")).toBe(1);
    expect(editDistance("lamda", "lambda")).toBe(1);
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
  });
  it("suggests the nearest known name, case-insensitively, and nothing for a far one", () => {
    expect(closestName("alpah", ["alpha"])).toBe("alpha");
    expect(closestName("densty", ["density", "lambda"])).toBe("density");
    expect(closestName("Merge_Methd", ["merge_method", "merge_params"])).toBe("merge_method");
    expect(closestName("strength", ["density", "lambda"])).toBeUndefined();
    expect(didYouMean("wieght", ["path", "weight"])).toBe(' (did you mean "weight"?)');
    expect(didYouMean("zzz", ["path", "weight"])).toBe("");
  });
});
