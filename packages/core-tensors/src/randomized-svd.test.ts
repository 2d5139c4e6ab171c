import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
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
