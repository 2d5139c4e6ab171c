import { describe, expect, it } from "vitest";
import { gatheringOrder } from "./gathering-order.js";

describe("gatheringOrder", () => {
  it("visits the chunks in index order unless the statistics allow any order", () => {
    expect(gatheringOrder(4, 0, false)).toEqual([0, 1, 2, 3]);
    expect(gatheringOrder(4, 2, false)).toEqual([0, 1, 2, 3]);
    expect(gatheringOrder(1, 0, true)).toEqual([0]);
    expect(gatheringOrder(0, 0, true)).toEqual([]);
  });

  it("otherwise ends even passes with the first chunks, starting with the full chunk before the last, and runs odd passes in index order", () => {
    expect(gatheringOrder(2, 0, true)).toEqual([0, 1]);
    expect(gatheringOrder(3, 0, true)).toEqual([1, 2, 0]);
    expect(gatheringOrder(6, 0, true)).toEqual([4, 5, 3, 2, 1, 0]);
    expect(gatheringOrder(6, 2, true)).toEqual([4, 5, 3, 2, 1, 0]);
    expect(gatheringOrder(6, 1, true)).toEqual([0, 1, 2, 3, 4, 5]);
    for (let count = 2; count < 40; count++) expect([...gatheringOrder(count, 0, true)].sort((a, b) => a - b)).toEqual(gatheringOrder(count, 0, false));
  });
});
