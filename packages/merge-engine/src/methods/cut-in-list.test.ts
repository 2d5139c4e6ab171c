import { describe, expect, it } from "vitest";
import { cutInList } from "./cut-in-list.js";

/** The definition: sort descending; the need-th value, and need minus the count of values above it. */
function bySort(values: readonly number[], need: number): [number, number] {
  const sorted = [...values].sort((a, b) => b - a);
  const threshold = sorted[need - 1]!;
  return [threshold, need - sorted.filter((v) => v > threshold).length];
}

describe("cutInList", () => {
  it("finds the need-th largest and its kept ties, as a sort does, for windows of one to 2³¹ bit patterns", () => {
    const histogram = new Uint32Array(65536);
    let seed = 12345;
    const random = () => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 600; trial++) {
      const widthBits = trial % 32;
      const lo = Math.floor(random() * (2 ** 31 - 2 ** widthBits + 1));
      const hi = lo + 2 ** widthBits - 1;
      // Few distinct values (ties at the cut), the window's ends included.
      const distinct = 1 + Math.floor(random() * 12);
      const palette = Array.from({ length: distinct }, (_, i) => (i === 0 ? lo : i === 1 ? hi : lo + Math.floor(random() * (hi - lo + 1))));
      const values = Uint32Array.from({ length: 1 + Math.floor(random() * 400) }, () => palette[Math.floor(random() * distinct)]!);
      const need = 1 + Math.floor(random() * values.length);
      expect(cutInList(values, lo, hi, need, histogram), `trial ${trial}: [${lo}, ${hi}], need ${need} of ${values.length}`).toEqual(bySort(Array.from(values), need));
      expect(histogram.every((c) => c === 0)).toBe(true);
    }
  });

  it("takes the window's whole range: lo 0 and hi 0x7fffffff (NaN magnitudes above +Inf)", () => {
    const histogram = new Uint32Array(65536);
    const values = Uint32Array.from([0, 0x7f800000, 0x7fc00000, 0x3f800000, 0x3f800000, 0x3f800001, 1, 0x7fffffff]);
    for (let need = 1; need <= values.length; need++) expect(cutInList(values, 0, 0x7fffffff, need, histogram), `need ${need}`).toEqual(bySort(Array.from(values), need));
  });

  it("in a window of one 16-bit bin (shift 0), the low bits 0xffff and 0x0000 included", () => {
    const histogram = new Uint32Array(65536);
    const lo = 0x3f800000;
    const values = Uint32Array.from([lo + 0xffff, lo, lo + 0xfffe, lo + 1, lo + 0xffff, lo]);
    for (let need = 1; need <= values.length; need++) expect(cutInList(values, lo, lo + 0xffff, need, histogram), `need ${need}`).toEqual(bySort(Array.from(values), need));
  });
});
