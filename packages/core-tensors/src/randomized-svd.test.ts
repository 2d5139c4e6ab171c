import { readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import { randomizedSvd } from "./randomized-svd.js";

// Matrices and torch.linalg.svd results: tools/fixtures/linalg_reference.py.
const ref = JSON.parse(readFileSync(new URL("../test/fixtures/linalg-reference.json", import.meta.url), "utf8")).svd as {
  m: number; n: number; decay: number[]; singularValues: number[]; bestRank4Error: number; lowRank3: number[];
};

function reconstructionError(a: Float32Array, m: number, n: number, svd: ReturnType<typeof randomizedSvd>): number {
  let err = 0;
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let v = 0;
      for (let r = 0; r < svd.rank; r++) v += svd.u[i * svd.rank + r]! * svd.s[r]! * svd.vh[r * n + j]!;
      err += (a[i * n + j]! - v) ** 2;
    }
  return Math.sqrt(err);
}

describe("randomizedSvd", () => {
  it("finds torch's leading singular values and the optimal rank-4 error (Eckart–Young)", () => {
    const a = Float32Array.from(ref.decay);
    const svd = randomizedSvd(a, ref.m, ref.n, 4);
    Array.from(svd.s).forEach((s, i) => expect(s).toBeCloseTo(ref.singularValues[i]!, 6));
    expect(reconstructionError(a, ref.m, ref.n, svd)).toBeLessThan(ref.bestRank4Error * 1.0001);
    // U and Vh are orthonormal
    for (let p = 0; p < 4; p++)
      for (let q = 0; q < 4; q++) {
        let uu = 0;
        let vv = 0;
        for (let i = 0; i < ref.m; i++) uu += svd.u[i * 4 + p]! * svd.u[i * 4 + q]!;
        for (let j = 0; j < ref.n; j++) vv += svd.vh[p * ref.n + j]! * svd.vh[q * ref.n + j]!;
        expect(uu).toBeCloseTo(p === q ? 1 : 0, 10);
        expect(vv).toBeCloseTo(p === q ? 1 : 0, 10);
      }
  });

  it("reproduces an exactly rank-3 matrix at rank ≥ 3", () => {
    const a = Float32Array.from(ref.lowRank3);
    const norm = Math.hypot(...a);
    const svd = randomizedSvd(a, ref.m, ref.n, 5);
    expect(svd.s[3]! / svd.s[0]!).toBeLessThan(1e-6);
    expect(reconstructionError(a, ref.m, ref.n, svd) / norm).toBeLessThan(1e-6);
  });

  it("handles a matrix of more than 2^24 elements (torch.quantile's limit in kohya's extractor)", () => {
    const [m, n] = [4200, 4100]; // 17.2 M elements
    const x = Float32Array.from({ length: m }, (_, i) => Math.sin(i + 1));
    const y = Float32Array.from({ length: n }, (_, j) => Math.cos(j * 0.37));
    const a = new Float32Array(m * n);
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) a[i * n + j] = x[i]! * y[j]!;
    const svd = randomizedSvd(a, m, n, 1, { oversample: 1, powerIterations: 0 });
    expect(svd.s[0]).toBeCloseTo(Math.hypot(...x) * Math.hypot(...y), 1);
  });
});

describe("randomizedSvd on the CPU kernel workers", () => {
  const kernels = createCpuKernelBackend({ workers: 2 });
  afterAll(() => kernels.close());
  const shared = (values: ArrayLike<number>) => {
    const a = kernels.allocF32(values.length);
    a.set(values);
    return a;
  };
  const bits = (x: Float64Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength).toString("hex");

  it("gives bit-identical U, S, Vh to the calling thread (its JavaScript products; the workers' are WebAssembly where the engine has it), several SVDs in flight at once", async () => {
    const cases = [
      { m: ref.m, n: ref.n, values: ref.decay, rank: 4, seed: 0 },
      { m: ref.m, n: ref.n, values: ref.lowRank3, rank: 5, seed: 3 },
      { m: 257, n: 131, values: Array.from({ length: 257 * 131 }, (_, i) => Math.sin(i * 0.37) * Math.cos(i % 29)), rank: 16, seed: 7 },
      // Zeros (skipped by the products) and an odd width l = rank + oversample: the workers'
      // WebAssembly products take their one-lane tail.
      { m: 90, n: 173, values: Array.from({ length: 90 * 173 }, (_, i) => (i % 5 === 2 ? (i % 2 ? 0 : -0) : Math.cos(i * 0.11) * (1 + (i % 7)))), rank: 7, seed: 11 },
    ];
    const results = await Promise.all(cases.map((c) => kernels.randomizedSvd!(shared(c.values), c.m, c.n, c.rank, { seed: c.seed })));
    cases.forEach((c, i) => {
      const inline = randomizedSvd(Float32Array.from(c.values), c.m, c.n, c.rank, { seed: c.seed });
      const onWorker = results[i]!;
      expect(onWorker.rank).toBe(inline.rank);
      expect(bits(onWorker.s)).toBe(bits(inline.s));
      expect(bits(onWorker.u)).toBe(bits(inline.u));
      expect(bits(onWorker.vh)).toBe(bits(inline.vh));
    });
    // and still torch's singular values
    Array.from(results[0]!.s).forEach((s, i) => expect(s).toBeCloseTo(ref.singularValues[i]!, 6));
  });

  it("leaves the calling thread free while a worker computes", async () => {
    const [m, n] = [500, 400];
    const a = shared(Array.from({ length: m * n }, (_, i) => Math.sin(i * 0.013) + Math.cos(i * 0.0071)));
    let turns = 0;
    const timer = setInterval(() => turns++, 0);
    const svd = await kernels.randomizedSvd!(a, m, n, 32, { seed: 1 });
    clearInterval(timer);
    expect(svd.rank).toBe(32);
    // Inline, the whole SVD would run inside the call and no timer turn could happen before it resolves.
    expect(turns).toBeGreaterThan(0);
  });

  it("checks its arguments before sending anything to a worker", async () => {
    await expect(kernels.randomizedSvd!(shared([1, 2, 3]), 2, 2, 1)).rejects.toThrow(/does not fit 3 values/);
    await expect(kernels.randomizedSvd!(shared([1, 2, 3, 4]), 2, 2, 0)).rejects.toThrow(/rank must be a positive integer/);
  });
});
