import { afterEach, describe, expect, it, vi } from "vitest";
import { DTYPE_SIZE, type DType } from "./dtypes.js";
import { decodeToF32 } from "./float-codecs.js";
import { sampleTaskVectorHistogram } from "./sample-task-vector-histogram.js";

/** The definition: for each sampled element, the top 16 bits of |fround(x − base)| as F32 bits. */
function definition(base: Float32Array, x: Float32Array, starts: readonly number[], block: number): Map<number, number> {
  const bits = new Uint32Array(1);
  const f = new Float32Array(bits.buffer);
  const bins = new Map<number, number>();
  for (const start of starts)
    for (let e = start; e < start + block; e++) {
      f[0] = x[e]! - base[e]!;
      const bin = (bits[0]! & 0x7fffffff) >>> 16;
      bins.set(bin, (bins.get(bin) ?? 0) + 1);
    }
  return bins;
}

let seed = 99;
const random = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32;

/** `length` elements of `dtype` from random bit patterns (Inf and NaN codes among them), `offset` bytes into their (shared) buffer. */
function encoded(dtype: DType, length: number, offset: number): Uint8Array {
  const buffer = new Uint8Array(new SharedArrayBuffer(offset + length * DTYPE_SIZE[dtype]));
  for (let i = offset; i < buffer.length; i++) buffer[i] = Math.floor(random() * 256);
  return buffer.subarray(offset);
}

describe("sampleTaskVectorHistogram", () => {
  afterEach(() => vi.unstubAllEnvs());

  it.each([
    ["F16", "F16"],
    ["BF16", "BF16"],
    ["F16", "BF16"],
    ["F32", "F32"],
    ["F16", "F32"],
    ["F32", "BF16"],
    ["F8_E4M3", "F16"],
  ] as const)("adds the level-0 bins of the sampled magnitudes (%s base, %s input), with the SIMD kernel and with STMERGE_KERNELS=js, aligned or not", (db, dx) => {
    for (const env of [undefined, "js"]) {
      if (env) vi.stubEnv("STMERGE_KERNELS", env);
      for (const offset of [0, 1, 2, 4]) {
        const length = 20_000;
        const base = { bytes: encoded(db, length, offset), dtype: db };
        const x = { bytes: encoded(dx, length, offset + 1), dtype: dx };
        const block = 64;
        const starts = Array.from({ length: 100 }, (_, j) => Math.floor((j * (length - block)) / 99));
        const bins = new Uint32Array(65536);
        bins[7] = 5; // added to, not overwritten
        const [first, last] = sampleTaskVectorHistogram(base, x, starts, block, bins);
        const expected = definition(decodeToF32(base.bytes.slice(), db), decodeToF32(x.bytes.slice(), dx), starts, block);
        expected.set(7, (expected.get(7) ?? 0) + 5);
        const got = new Map<number, number>();
        bins.forEach((c, bin) => c > 0 && got.set(bin, c));
        expect(got, `${env ?? "simd"} offset ${offset}`).toEqual(expected);
        for (const bin of expected.keys()) if (bin !== 7) expect(bin >= first && bin <= last, `bin ${bin} in [${first}, ${last}]`).toBe(true);
      }
    }
  });
});
