import { describe, expect, it } from "vitest";
import { chunkQuotaSpans, keptSpans } from "./quota-spans.js";

describe("keptSpans", () => {
  it("gives each part its cut-equal entries while the quota lasts, in list order for parts listed in index order (seeded trials against a walk over the list)", () => {
    let seed = 7;
    const next = (n: number) => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 8) % n;
    for (let trial = 0; trial < 200; trial++) {
      const sizes = Array.from({ length: 1 + next(4) }, () => next(30));
      const list = Uint32Array.from({ length: sizes.reduce((a, b) => a + b, 0) }, () => 100 + next(4));
      const parts = sizes.map((inWindow, i) => ({ from: 1000 * i, to: 1000 * (i + 1), inWindow }));
      const equal = list.filter((v) => v === 101).length;
      const quota = next(equal + 1);
      // The definition: the first `quota` entries equal to the cut, in list order, and the part each lies in.
      const kept = sizes.map(() => 0);
      let left = quota;
      let at = 0;
      sizes.forEach((size, i) => {
        for (let j = at; j < at + size; j++)
          if (list[j] === 101 && left > 0) {
            kept[i]!++;
            left--;
          }
        at += size;
      });
      expect(keptSpans(list, parts, 101, quota), `trial ${trial}`).toEqual(parts.map(({ from, to }, i) => ({ from, to, quota: kept[i] })));
    }
  });

  it("gives the quota to the parts in index order when they were listed in another order (a key gathered last chunk first)", () => {
    // Parts in index order 0…3 hold 2, 1, 3 and 2 cut-equal (7) entries; listed as 2, 3, 0, 1.
    const byPart = [[7, 101, 101], [101, 9], [101, 101, 101], [101, 8, 101]];
    const order = [2, 3, 0, 1];
    const list = Uint32Array.from(order.flatMap((i) => byPart[i]!));
    const parts = order.map((i) => ({ from: 100 * i, to: 100 * (i + 1), inWindow: byPart[i]!.length }));
    const spans = (quotas: number[]) => quotas.map((quota, i) => ({ from: 100 * i, to: 100 * (i + 1), quota }));
    expect(keptSpans(list, parts, 101, 4)).toEqual(spans([2, 1, 1, 0]));
    expect(keptSpans(list, parts, 101, 8)).toEqual(spans([2, 1, 3, 2]));
    expect(keptSpans(list, parts, 101, 0)).toEqual(spans([0, 0, 0, 0]));
  });

  it("says nothing when the parts do not account for the list", () => {
    expect(keptSpans(Uint32Array.of(5, 5, 5), [{ from: 0, to: 10, inWindow: 2 }], 5, 1)).toBeUndefined();
  });
});

describe("chunkQuotaSpans", () => {
  const spans = [
    { from: 0, to: 64, quota: 2 },
    { from: 64, to: 100, quota: 1 },
    { from: 100, to: 164, quota: 0 },
    { from: 164, to: 200, quota: 4 },
  ];

  it("takes the spans of the chunk, relative to it, and each task vector's quota there (0 for one with none left)", () => {
    expect(chunkQuotaSpans([spans, undefined], [5, 0], 100, 100)).toEqual({
      spans: [
        { from: 0, to: 64, quotas: [0, 0] },
        { from: 64, to: 100, quotas: [4, 0] },
      ],
      quotas: [4, 0],
    });
    expect(chunkQuotaSpans([spans, spans], [7, 7], 0, 100)?.quotas).toEqual([3, 3]);
  });

  it("says nothing when a task vector with a quota left has no spans, spans off the chunk's ends or on other boundaries, or none has a quota", () => {
    expect(chunkQuotaSpans([spans, undefined], [5, 1], 100, 100)).toBeUndefined();
    expect(chunkQuotaSpans([spans], [5], 100, 90)).toBeUndefined();
    expect(chunkQuotaSpans([spans], [5], 32, 100)).toBeUndefined();
    expect(chunkQuotaSpans([spans, [{ from: 100, to: 150, quota: 1 }, { from: 150, to: 200, quota: 1 }]], [5, 5], 100, 100)).toBeUndefined();
    expect(chunkQuotaSpans([spans, spans], [0, 0], 0, 100)).toBeUndefined();
  });
});
