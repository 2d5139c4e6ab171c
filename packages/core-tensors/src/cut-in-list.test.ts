import { afterEach, describe, expect, it, vi } from "vitest";
import { binOfRank, countEqual, cutInList } from "./cut-in-list.js";
import { localOps } from "./local-kernels.js";

/** The definition: sort descending; the need-th value, and need minus the count of values above it. */
function bySort(values: readonly number[], need: number): [number, number] {
  const sorted = [...values].sort((a, b) => b - a);
  const threshold = sorted[need - 1]!;
  return [threshold, need - sorted.filter((v) => v > threshold).length];
}

// Both implementations against the definition: the JavaScript op (the reference, sorting the
// cut's bin) and the WebAssembly one (two levels of bins), where the engine has SIMD.
const js = localOps(false);
const simd = localOps(true);
const implementations = [
  ["JavaScript", js],
  ...(simd !== js ? [["WebAssembly SIMD", simd] as const] : []),
] as const;

let seed = 12345;
const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

/** A list of `length` values in a window of 2^widthBits bit patterns, from `distinct` of them (ties at the cut), the window's ends included. */
function windowList(widthBits: number, length: number, distinct: number): { lo: number; hi: number; values: Uint32Array } {
  const lo = Math.floor(random() * (2 ** 31 - 2 ** widthBits + 1));
  const hi = lo + 2 ** widthBits - 1;
  const palette = Array.from({ length: distinct }, (_, i) => (i === 0 ? lo : i === 1 ? hi : lo + Math.floor(random() * (hi - lo + 1))));
  return { lo, hi, values: Uint32Array.from({ length }, () => palette[Math.floor(random() * distinct)]!) };
}

describe.each(implementations)("cutInList (%s)", (_name, ops) => {
  const cut = (values: Uint32Array, lo: number, hi: number, need: number) => ops.cutInList!([values], 0, values.length, { lo, hi, need });

  it("finds the need-th largest and its kept ties, as a sort does, for windows of one to 2³¹ bit patterns", () => {
    for (let trial = 0; trial < 600; trial++) {
      const { lo, hi, values } = windowList(trial % 32, 1 + Math.floor(random() * 400), 1 + Math.floor(random() * 12));
      const need = 1 + Math.floor(random() * values.length);
      expect(cut(values, lo, hi, need), `trial ${trial}: [${lo}, ${hi}], need ${need} of ${values.length}`).toEqual(bySort(Array.from(values), need));
    }
  });

  it("lists of thousands of distinct values (every bin of both levels in use), any need, one call after another", () => {
    for (let trial = 0; trial < 40; trial++) {
      const { lo, hi, values } = windowList(14 + (trial % 18), 1000 + Math.floor(random() * 20000), 5000);
      for (const need of [1, 2, Math.floor(values.length / 3), values.length - 1, values.length]) {
        expect(cut(values, lo, hi, need), `trial ${trial}: [${lo}, ${hi}], need ${need} of ${values.length}`).toEqual(bySort(Array.from(values), need));
      }
    }
  });

  it("takes the window's whole range: lo 0 and hi 0x7fffffff (NaN magnitudes above +Inf)", () => {
    const values = Uint32Array.from([0, 0x7f800000, 0x7fc00000, 0x3f800000, 0x3f800000, 0x3f800001, 1, 0x7fffffff]);
    for (let need = 1; need <= values.length; need++) expect(cut(values, 0, 0x7fffffff, need), `need ${need}`).toEqual(bySort(Array.from(values), need));
  });

  it("in a window of one 16-bit bin (shift 0), the low bits 0xffff and 0x0000 included", () => {
    const lo = 0x3f800000;
    const values = Uint32Array.from([lo + 0xffff, lo, lo + 0xfffe, lo + 1, lo + 0xffff, lo]);
    for (let need = 1; need <= values.length; need++) expect(cut(values, lo, lo + 0xffff, need), `need ${need}`).toEqual(bySort(Array.from(values), need));
  });

  it("reads only values[from…to)", () => {
    const values = Uint32Array.from([900, 5, 7, 7, 6, 900]);
    expect(ops.cutInList!([values], 1, 5, { lo: 0, hi: 1000, need: 2 })).toEqual([7, 2]);
    expect(ops.countEqual!([values], 1, 5, { value: 7 })).toBe(2);
    expect(ops.countEqual!([values], 0, 6, { value: 900 })).toBe(2);
  });

  it("a list with values outside its window (against the contract) still returns, and the next call is right", () => {
    const values = Uint32Array.from({ length: 1000 }, (_, i) => (i % 3 === 0 ? 0xffffffff : i % 3 === 1 ? 5 : 0x40000000 + i));
    expect(() => cut(values, 0x40000000, 0x40010000, 10)).not.toThrow();
    const { lo, hi, values: good } = windowList(20, 5000, 3000);
    expect(cut(good, lo, hi, 77)).toEqual(bySort(Array.from(good), 77));
  });
});

describe("the exported helpers", () => {
  afterEach(() => vi.unstubAllEnvs());

  it("cutInList and countEqual give the definition's results with the SIMD ops and with STMERGE_KERNELS=js", () => {
    const { lo, hi, values } = windowList(24, 30001, 700);
    for (const env of [undefined, "js"]) {
      if (env) vi.stubEnv("STMERGE_KERNELS", env);
      expect(cutInList(values, lo, hi, 12345)).toEqual(bySort(Array.from(values), 12345));
      const value = values[17]!;
      expect(countEqual(values, 3, 29999, value)).toBe(Array.from(values.subarray(3, 29999)).filter((v) => v === value).length);
    }
  });

  it("binOfRank counts down from the top bin", () => {
    const bins = new Uint32Array(16);
    bins.set([4, 0, 3, 0, 0, 2, 1], 0);
    expect(binOfRank(bins, 15, 1)).toEqual([6, 0]);
    expect(binOfRank(bins, 15, 2)).toEqual([5, 1]);
    expect(binOfRank(bins, 15, 4)).toEqual([2, 3]);
    expect(binOfRank(bins, 15, 6)).toEqual([2, 3]);
    expect(binOfRank(bins, 15, 7)).toEqual([0, 6]);
    // Fewer than need: bin 0, all counted above it.
    expect(binOfRank(bins, 15, 50)).toEqual([0, 6]);
  });
});
