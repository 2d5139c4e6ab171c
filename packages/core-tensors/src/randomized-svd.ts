import { KernelError } from "./errors.js";
import { randomizedSvdModule } from "./randomized-svd-module.js";

/**
 * Truncated SVD of a dense row-major F32 matrix A [m×n] by randomized subspace iteration
 * (Halko, Martinsson & Tropp 2011, Alg. 4.4; the method of torch.svd_lowrank): sketch
 * Y = A·Ω with k + oversample Gaussian columns, a few power iterations with re-orthonormalisation
 * (QR), B = Qᵀ·A, then an exact one-sided Jacobi SVD of the small B. Products with A accumulate
 * in F64; A itself is never copied, squared or limited in size (no 2^24-element limits).
 */
export interface TruncatedSvd {
  /** Left singular vectors, row-major [m×k]. */
  readonly u: Float64Array;
  /** Singular values, descending, length k. */
  readonly s: Float64Array;
  /** Right singular vectors transposed, row-major [k×n]. */
  readonly vh: Float64Array;
  readonly rank: number;
}

export interface RandomizedSvdOptions {
  /** Extra sketch columns beyond the rank (default 10). */
  readonly oversample?: number;
  /** Power iterations (default 2): more sharpen the subspace when singular values decay slowly. */
  readonly powerIterations?: number;
  /** Seed of the Gaussian sketch, so results are reproducible (default 0). */
  readonly seed?: number;
}

let local: ReturnType<typeof randomizedSvdModule> | undefined;

/**
 * Exact SVD of a small dense matrix by one-sided Jacobi on its columns: M [rows×cols] row-major
 * (cols small). Returns M = W·diag(σ)·Vᵀ with W's columns in `w` ([rows×cols], unit where σ > 0)
 * and V [cols×cols], unsorted.
 */
export function jacobiSvd(m: Float64Array, rows: number, cols: number, maxSweeps = 60): { w: Float64Array; sigma: Float64Array; v: Float64Array } {
  local ??= randomizedSvdModule();
  return local.jacobiSvd(m, rows, cols, maxSweeps);
}

/** Throws unless A [m×n] and the rank are usable; returns the options with their defaults. */
export function checkSvdArgs(a: Float32Array, m: number, n: number, rank: number, options: RandomizedSvdOptions): Required<RandomizedSvdOptions> {
  if (!(Number.isSafeInteger(m) && Number.isSafeInteger(n) && m > 0 && n > 0 && a.length >= m * n)) throw new KernelError("LINALG_BAD_ARGS", `svd: matrix ${m}×${n} does not fit ${a.length} values`);
  if (!(Number.isSafeInteger(rank) && rank > 0)) throw new KernelError("LINALG_BAD_ARGS", `svd: rank must be a positive integer, got ${rank}`);
  return { oversample: options.oversample ?? 10, powerIterations: options.powerIterations ?? 2, seed: options.seed ?? 0 };
}

/** The best rank-`rank` approximation A ≈ U·diag(S)·Vh of A [m×n] (row-major F32), on the calling thread. */
export function randomizedSvd(a: Float32Array, m: number, n: number, rank: number, options: RandomizedSvdOptions = {}): TruncatedSvd {
  const o = checkSvdArgs(a, m, n, rank, options);
  local ??= randomizedSvdModule();
  return local.randomizedSvd(a, m, n, rank, o.oversample, o.powerIterations, o.seed);
}
