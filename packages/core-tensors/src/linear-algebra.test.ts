import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { kronF32, matmulF32, matmulTransposedAF32, transposeF32 } from "./linear-algebra.js";

// Expected values from PyTorch: tools/fixtures/linalg_reference.py.
const ref = JSON.parse(readFileSync(new URL("../test/fixtures/linalg-reference.json", import.meta.url), "utf8")) as {
  matmul: { a: number[]; b: number[]; m: number; k: number; n: number; c: number[] };
  kron: { a: number[]; b: number[]; c: number[]; shape: number[] };
};

describe("linear-algebra kernels vs torch", () => {
  it("matmul agrees with torch's a @ b to F32 rounding", () => {
    const { a, b, m, k, n, c } = ref.matmul;
    const got = matmulF32(Float32Array.from(a), Float32Array.from(b), m, k, n);
    c.forEach((want, i) => expect(got[i]).toBeCloseTo(want, 5));
  });

  it("Aᵀ·B without a transpose equals matmul of the transpose", () => {
    const { a, b, m, k, n, c } = ref.matmul;
    const at = transposeF32(Float32Array.from(a), m, k); // Aᵀ, [k×m]
    const got = matmulTransposedAF32(at, Float32Array.from(b), k, m, n); // (Aᵀ)ᵀ·B
    c.forEach((want, i) => expect(got[i]).toBeCloseTo(want, 5));
  });

  it("conv-shaped Kronecker product equals torch.kron(w1[..., None, None], w2) exactly", () => {
    const { a, b, c, shape } = ref.kron;
    expect(shape).toEqual([8, 15, 3, 3]);
    const got = kronF32(Float32Array.from(a), 2, 3, Float32Array.from(b), 4, 5, 9);
    expect(Array.from(got)).toEqual(Array.from(Float32Array.from(c)));
  });
});
