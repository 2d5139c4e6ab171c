/** Y[m×l] = A[m×n] · X[n×l] and Z[n×l] = Aᵀ · Q[m×l] (A F32, the rest F64, row-major): randomizedSvd's products with A. */
export interface SvdProducts {
  timesRight(a: Float32Array, m: number, n: number, x: Float64Array, l: number): Float64Array;
  timesLeftTransposed(a: Float32Array, m: number, n: number, q: Float64Array, l: number): Float64Array;
}

/**
 * The randomized truncated SVD as one self-contained function, so the same code runs on the
 * calling thread and, serialised with `toString()` into the kernel worker source, on the worker
 * threads (bit-identical results either way: the same IEEE-754 F64 operations in the same order).
 * It references only globals; argument checks live in randomized-svd.ts.
 */
export function randomizedSvdModule() {
  /** Deterministic standard normal values (xorshift32 + Box–Muller). */
  function gaussian(length: number, seed: number): Float64Array {
    let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
    const next = () => {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      return (s + 1) / 4294967297;
    };
    const out = new Float64Array(length);
    for (let i = 0; i < length; i += 2) {
      const r = Math.sqrt(-2 * Math.log(next()));
      const t = 2 * Math.PI * next();
      out[i] = r * Math.cos(t);
      if (i + 1 < length) out[i + 1] = r * Math.sin(t);
    }
    return out;
  }

  /** Y[m×l] = A[m×n] · X[n×l] (X row-major F64). */
  function timesRight(a: Float32Array, m: number, n: number, x: Float64Array, l: number): Float64Array {
    const y = new Float64Array(m * l);
    for (let i = 0; i < m; i++) {
      const ai = i * n;
      const yi = i * l;
      for (let j = 0; j < n; j++) {
        const v = a[ai + j]!;
        if (v === 0) continue;
        const xj = j * l;
        for (let c = 0; c < l; c++) y[yi + c] = y[yi + c]! + v * x[xj + c]!;
      }
    }
    return y;
  }

  /** Z[n×l] = Aᵀ · Q, A [m×n], Q [m×l] row-major. */
  function timesLeftTransposed(a: Float32Array, m: number, n: number, q: Float64Array, l: number): Float64Array {
    const z = new Float64Array(n * l);
    for (let i = 0; i < m; i++) {
      const ai = i * n;
      const qi = i * l;
      for (let j = 0; j < n; j++) {
        const v = a[ai + j]!;
        if (v === 0) continue;
        const zj = j * l;
        for (let c = 0; c < l; c++) z[zj + c] = z[zj + c]! + v * q[qi + c]!;
      }
    }
    return z;
  }

  /** Orthonormalises the l columns of a row-major [rows×l] matrix in place (Gram–Schmidt, twice). */
  function orthonormalizeColumns(x: Float64Array, rows: number, l: number): void {
    for (let c = 0; c < l; c++) {
      for (let pass = 0; pass < 2; pass++) {
        for (let p = 0; p < c; p++) {
          let dot = 0;
          for (let i = 0; i < rows; i++) dot += x[i * l + c]! * x[i * l + p]!;
          for (let i = 0; i < rows; i++) x[i * l + c] = x[i * l + c]! - dot * x[i * l + p]!;
        }
      }
      let norm = 0;
      for (let i = 0; i < rows; i++) norm += x[i * l + c]! ** 2;
      norm = Math.sqrt(norm);
      // A dependent column (A has lower rank than the sketch) becomes zero; it gets σ = 0 later.
      const inv = norm > 1e-300 ? 1 / norm : 0;
      for (let i = 0; i < rows; i++) x[i * l + c] = x[i * l + c]! * inv;
    }
  }

  /**
   * Exact SVD of a small dense matrix by one-sided Jacobi on its columns: M [rows×cols] row-major
   * (cols small). Returns M = W·diag(σ)·Vᵀ with W's columns in `w` ([rows×cols], unit where σ > 0)
   * and V [cols×cols], unsorted.
   */
  function jacobiSvd(m: Float64Array, rows: number, cols: number, maxSweeps = 60): { w: Float64Array; sigma: Float64Array; v: Float64Array } {
    const w = Float64Array.from(m.subarray(0, rows * cols));
    const v = new Float64Array(cols * cols);
    for (let i = 0; i < cols; i++) v[i * cols + i] = 1;
    for (let sweep = 0; sweep < maxSweeps; sweep++) {
      let rotated = false;
      for (let p = 0; p < cols - 1; p++) {
        for (let q = p + 1; q < cols; q++) {
          let alpha = 0;
          let beta = 0;
          let gamma = 0;
          for (let i = 0; i < rows; i++) {
            const wp = w[i * cols + p]!;
            const wq = w[i * cols + q]!;
            alpha += wp * wp;
            beta += wq * wq;
            gamma += wp * wq;
          }
          if (gamma === 0 || Math.abs(gamma) <= 1e-15 * Math.sqrt(alpha * beta)) continue;
          rotated = true;
          const zeta = (beta - alpha) / (2 * gamma);
          const t = Math.sign(zeta || 1) / (Math.abs(zeta) + Math.sqrt(1 + zeta * zeta));
          const c = 1 / Math.sqrt(1 + t * t);
          const s = c * t;
          for (let i = 0; i < rows; i++) {
            const wp = w[i * cols + p]!;
            const wq = w[i * cols + q]!;
            w[i * cols + p] = c * wp - s * wq;
            w[i * cols + q] = s * wp + c * wq;
          }
          for (let i = 0; i < cols; i++) {
            const vp = v[i * cols + p]!;
            const vq = v[i * cols + q]!;
            v[i * cols + p] = c * vp - s * vq;
            v[i * cols + q] = s * vp + c * vq;
          }
        }
      }
      if (!rotated) break;
    }
    const sigma = new Float64Array(cols);
    for (let c = 0; c < cols; c++) {
      let norm = 0;
      for (let i = 0; i < rows; i++) norm += w[i * cols + c]! ** 2;
      sigma[c] = Math.sqrt(norm);
      if (sigma[c]! > 0) for (let i = 0; i < rows; i++) w[i * cols + c] = w[i * cols + c]! / sigma[c]!;
    }
    return { w, sigma, v };
  }

  /**
   * A ≈ U·diag(S)·Vh of A [m×n] (row-major F32) with k = min(rank, m, n) columns. `products`: the
   * two products with A, timesRight and timesLeftTransposed by default; the WebAssembly kernels
   * pass theirs (the same operations in the same order, so the same bits).
   */
  function randomizedSvd(a: Float32Array, m: number, n: number, rank: number, oversample: number, powerIterations: number, seed: number, products: SvdProducts = { timesRight, timesLeftTransposed }) {
    const k = Math.min(rank, m, n);
    const l = Math.min(k + oversample, m, n);
    let q = products.timesRight(a, m, n, gaussian(n * l, seed), l);
    orthonormalizeColumns(q, m, l);
    for (let it = 0; it < powerIterations; it++) {
      const z = products.timesLeftTransposed(a, m, n, q, l);
      orthonormalizeColumns(z, n, l);
      q = products.timesRight(a, m, n, z, l);
      orthonormalizeColumns(q, m, l);
    }
    // Bᵀ [n×l] = Aᵀ·Q; Jacobi on its columns: Bᵀ = W·Σ·Vᵀ, so A ≈ Q·B = (Q·V)·Σ·Wᵀ.
    const bt = products.timesLeftTransposed(a, m, n, q, l);
    const { w, sigma, v } = jacobiSvd(bt, n, l);
    const order = Array.from({ length: l }, (_, i) => i).sort((x, y) => sigma[y]! - sigma[x]!).slice(0, k);
    const u = new Float64Array(m * k);
    const s = new Float64Array(k);
    const vh = new Float64Array(k * n);
    order.forEach((col, r) => {
      s[r] = sigma[col]!;
      for (let i = 0; i < m; i++) {
        let sum = 0;
        for (let c = 0; c < l; c++) sum += q[i * l + c]! * v[c * l + col]!;
        u[i * k + r] = sum;
      }
      for (let j = 0; j < n; j++) vh[r * n + j] = w[j * l + col]!;
    });
    return { u, s, vh, rank: k };
  }

  return {
    randomizedSvd,
    jacobiSvd,
    /**
     * Worker op (kernel protocol `op(arrays, from, to, params)`): arrays = [A], a view of a
     * SharedArrayBuffer; the result (plain F64 arrays) is copied back by postMessage.
     */
    kernelOps: {
      randomizedSvd: (arrays: readonly ArrayBufferView[], _from: number, _to: number, p: Record<string, number>, _at?: readonly number[], products?: SvdProducts) =>
        randomizedSvd(arrays[0] as Float32Array, p.m!, p.n!, p.rank!, p.oversample!, p.powerIterations!, p.seed!, products),
    },
  };
}
