import { KernelError } from "./errors.js";

/**
 * Dense row-major F32 linear algebra for LoRA work (bake, merge, extract). Sizes are plain
 * numbers, so nothing here is limited to 2^24 elements; accumulation is in F32 like torch's CPU
 * matmul, in blocks that keep a row of B and a row of C in cache.
 */

const BLOCK = 64;

function check(condition: boolean, message: string): void {
  if (!condition) throw new KernelError("LINALG_BAD_ARGS", message);
}

/** C[m×n] = A[m×k] · B[k×n] (row-major). `out` (m·n long) is overwritten. */
export function matmulF32(a: Float32Array, b: Float32Array, m: number, k: number, n: number, out?: Float32Array): Float32Array {
  check(a.length >= m * k && b.length >= k * n, `matmul: operands shorter than ${m}×${k} · ${k}×${n}`);
  const c = out ?? new Float32Array(m * n);
  check(c.length >= m * n, `matmul: output shorter than ${m}×${n}`);
  c.fill(0, 0, m * n);
  for (let p0 = 0; p0 < k; p0 += BLOCK) {
    const p1 = Math.min(p0 + BLOCK, k);
    for (let j0 = 0; j0 < n; j0 += 4 * BLOCK) {
      const j1 = Math.min(j0 + 4 * BLOCK, n);
      for (let i = 0; i < m; i++) {
        const ci = i * n;
        const ai = i * k;
        for (let p = p0; p < p1; p++) {
          const av = a[ai + p]!;
          if (av === 0) continue;
          const bp = p * n;
          for (let j = j0; j < j1; j++) c[ci + j] = Math.fround(c[ci + j]! + Math.fround(av * b[bp + j]!));
        }
      }
    }
  }
  return c;
}

/** C[m×n] = Aᵀ · B where A is [k×m] and B is [k×n] (row-major), without materialising Aᵀ. */
export function matmulTransposedAF32(a: Float32Array, b: Float32Array, k: number, m: number, n: number, out?: Float32Array): Float32Array {
  check(a.length >= k * m && b.length >= k * n, `matmulTA: operands shorter than ${k}×${m}, ${k}×${n}`);
  const c = out ?? new Float32Array(m * n);
  c.fill(0, 0, m * n);
  for (let p = 0; p < k; p++) {
    const ap = p * m;
    const bp = p * n;
    for (let i = 0; i < m; i++) {
      const av = a[ap + i]!;
      if (av === 0) continue;
      const ci = i * n;
      for (let j = 0; j < n; j++) c[ci + j] = Math.fround(c[ci + j]! + Math.fround(av * b[bp + j]!));
    }
  }
  return c;
}

/** Aᵀ of a row-major [rows×cols] matrix. */
export function transposeF32(a: Float32Array, rows: number, cols: number, out?: Float32Array): Float32Array {
  const t = out ?? new Float32Array(rows * cols);
  for (let i0 = 0; i0 < rows; i0 += BLOCK) {
    for (let j0 = 0; j0 < cols; j0 += BLOCK) {
      const i1 = Math.min(i0 + BLOCK, rows);
      const j1 = Math.min(j0 + BLOCK, cols);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) t[j * rows + i] = a[i * cols + j]!;
    }
  }
  return t;
}

/**
 * Kronecker product of A [aRows×aCols] and B [bRows×bCols·inner] where each element of B's
 * trailing `inner` axis (a conv kernel's kh·kw) is kept together: the result is
 * [aRows·bRows × aCols·bCols·inner], matching torch.kron(A[...,None,None], B) for conv LoKr.
 */
export function kronF32(a: Float32Array, aRows: number, aCols: number, b: Float32Array, bRows: number, bCols: number, inner = 1, out?: Float32Array): Float32Array {
  check(a.length >= aRows * aCols && b.length >= bRows * bCols * inner, "kron: operands shorter than their shapes");
  const rows = aRows * bRows;
  const cols = aCols * bCols;
  const c = out ?? new Float32Array(rows * cols * inner);
  for (let i = 0; i < aRows; i++) {
    for (let j = 0; j < aCols; j++) {
      const av = a[i * aCols + j]!;
      for (let p = 0; p < bRows; p++) {
        const rowBase = ((i * bRows + p) * cols + j * bCols) * inner;
        const bBase = p * bCols * inner;
        for (let q = 0; q < bCols * inner; q++) c[rowBase + q] = Math.fround(av * b[bBase + q]!);
      }
    }
  }
  return c;
}
