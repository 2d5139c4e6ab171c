import type { DType } from "./dtypes.js";
import type { RandomizedSvdOptions, TruncatedSvd } from "./randomized-svd.js";

/**
 * Blocks the CPU backend's WebAssembly kernels read and write where they are, without copying
 * them through each thread's own memory (13–20% of a kernel thread's time). Views from it work
 * with every op like allocBytes/allocF32's. The blocks come from one memory the backend keeps
 * until close() (WebAssembly memories only grow), so a caller gives blocks back when done with
 * them (free, or all at once with release) and later arenas reuse those pages.
 */
export interface KernelArena {
  /** Zero-filled bytes in the arena (a plain shared buffer when the arena cannot grow further). */
  allocBytes(byteLength: number): Uint8Array;
  /** Zero-filled F32 values in the arena (a plain shared buffer when the arena cannot grow further). */
  allocF32(length: number): Float32Array;
  /** Gives a view from allocBytes/allocF32 back for reuse; the caller must not use it afterwards. Others are ignored. */
  free(view: ArrayBufferView): void;
  /** Gives every block back; views from this arena must not be used afterwards (later ones reuse the blocks). */
  release(): void;
}

/** The bins a histogram step added to (`into` is unchanged outside [lo, hi]; lo > hi: none). */
export type HistogramBins = readonly [lo: number, hi: number];

/** What taskVectorWindow found: elements above the window, and in it (written or not). */
export interface TaskVectorWindow {
  readonly above: number;
  readonly inWindow: number;
  /**
   * Where the list's entries came from, when the backend says: element ranges in index order
   * that cover the call's elements, each with how many of its elements lie in the window (its
   * entries are consecutive in the list). The CPU backend's are its thread ranges, which its
   * TIES merge pass over as many elements uses again (see QuotaSpan).
   */
  readonly parts?: readonly WindowPart[];
}

/** Elements [from, to) of a window pass and how many of them lie in the window. */
export interface WindowPart {
  readonly from: number;
  readonly to: number;
  readonly inWindow: number;
}

/**
 * The cut-equal elements each task vector keeps among elements [from, to) of a TIES merge
 * pass's chunk (`quotas[i]` for task vector i), known beforehand, e.g. from a window pass's
 * list and parts. Spans in index order that cover the chunk and split `quotas` exactly let a
 * backend whose thread ranges are these spans merge them all at once, instead of counting the
 * cut-equal elements of each range before the next one starts.
 */
export interface QuotaSpan {
  readonly from: number;
  readonly to: number;
  readonly quotas: readonly number[];
}

/**
 * The compute interface merge methods are written against. Two implementations exist: CPU
 * worker threads over shared memory (the default) and TensorFlow.js (optional GPU).
 *
 * Values flow as Float32Array. Arrays from `allocF32`/`allocBytes` live in SharedArrayBuffers so
 * the CPU backend can split work across workers without copying; plain arrays also work (they
 * are processed on the calling thread). Every op that produces an array takes an optional `out`
 * (may alias an input for in-place work) and returns it.
 */
export interface KernelBackend {
  readonly kind: "cpu" | "tfjs";
  /** Human-readable description for the banner, e.g. "cpu (2 worker threads)". */
  readonly description: string;
  /** Number of threads working in parallel (1 for inline). */
  readonly parallelism: number;

  allocF32(length: number): Float32Array;
  allocBytes(byteLength: number): Uint8Array;
  /**
   * Optional: memory the kernels work on in place, for a caller with a long-lived working set
   * (the merge executor's buffers). Undefined where the backend has none (no worker threads, no
   * WebAssembly SIMD, or no shared WebAssembly memory): use allocF32/allocBytes then.
   */
  createArena?(): KernelArena | undefined;

  /** Decodes little-endian tensor bytes of any dtype to F32 (integers converted by value). */
  decode(bytes: Uint8Array, dtype: DType, out?: Float32Array): Promise<Float32Array>;
  /** Encodes F32 values to a float dtype with round-to-nearest-even. */
  encode(values: Float32Array, dtype: DType, out?: Uint8Array): Promise<Uint8Array>;

  /** out = Σ weights[i] · inputs[i], accumulated in F32. */
  weightedSum(inputs: readonly Float32Array[], weights: readonly number[], out?: Float32Array): Promise<Float32Array>;
  /** out = a · s */
  scale(a: Float32Array, s: number, out?: Float32Array): Promise<Float32Array>;
  /** out = a + b */
  add(a: Float32Array, b: Float32Array, out?: Float32Array): Promise<Float32Array>;
  /** out = a − b */
  sub(a: Float32Array, b: Float32Array, out?: Float32Array): Promise<Float32Array>;
  /** out = a + t · (b − a) */
  lerp(a: Float32Array, b: Float32Array, t: number, out?: Float32Array): Promise<Float32Array>;
  /** out = |a| */
  abs(a: Float32Array, out?: Float32Array): Promise<Float32Array>;
  /** out = sign(a) ∈ {−1, 0, 1} (NaN stays NaN) */
  sign(a: Float32Array, out?: Float32Array): Promise<Float32Array>;
  /** out = min(max(a, lo), hi) */
  clamp(a: Float32Array, lo: number, hi: number, out?: Float32Array): Promise<Float32Array>;
  /** Σ a[i] · b[i], accumulated in F64. */
  dot(a: Float32Array, b: Float32Array): Promise<number>;
  /** √(Σ a[i]²), accumulated in F64. */
  norm(a: Float32Array): Promise<number>;
  /**
   * The magnitude threshold t such that the `k` elements of largest |a| satisfy |a| ≥ t
   * (ties at t may add a few more). k ≤ 0 gives +Infinity; k ≥ length gives 0.
   */
  topKThreshold(a: Float32Array, k: number): Promise<number>;

  /**
   * Optional fused hot loop of weighted merges: out = encode(Σ weights[i] · decode(inputs[i]))
   * into `outDtype`, bit-identical to decode + weightedSum + encode but without F32 copies of
   * the inputs in memory. Callers fall back to those three ops when a backend lacks it.
   */
  weightedSumEncoded?(inputs: readonly EncodedTensor[], weights: readonly number[], outDtype: DType, out?: Uint8Array): Promise<Uint8Array>;

  /**
   * Optional LoRA bake step: w[(rowOffset + i)·cols + j] += factor · (up · down)[i, j] for the
   * `rows` rows of up [rows×rank] and down [rank×cols], in F32, split by rows across threads.
   */
  addLowRankProduct?(w: Float32Array, up: Float32Array, down: Float32Array, shape: { readonly rows: number; readonly rank: number; readonly cols: number; readonly rowOffset: number }, factor: number): Promise<void>;

  /**
   * Optional TIES statistics step: adds to `into` (65536 bins) the histogram of |fround(x − base)|
   * as F32 bits, NaN included. level 0 bins the top 16 bits; level 1 the low 16 bits of the
   * elements whose top 16 bits equal `prefix`. May say which bins it added to (HistogramBins),
   * so that the caller reads and clears only those.
   */
  taskVectorHistogram?(base: Float32Array, x: Float32Array, level: 0 | 1, prefix: number, into: Uint32Array): Promise<HistogramBins | void>;
  /**
   * Optional TIES merge step over one chunk: task vector i keeps |δᵢ| > cuts[i] (−1: all,
   * Infinity: none) plus the first quotas[i] elements (in index order) with |δᵢ| equal to the
   * cut; sign elected from Σ wᵢδᵢ (+1 at 0); out = base + λ·disjoint mean, in F32 with the
   * weights and λ rounded to F32, each operation in mergekit's order. `spans` may say how the quotas split over element ranges (QuotaSpan); a backend
   * that uses them trusts them, so they must give each range the cut-equal elements it holds
   * among the first quotas[i] (the result is then the same as without them). Returns how many
   * cut-equal elements each task vector kept.
   */
  tiesMerge?(base: Float32Array, models: readonly Float32Array[], weights: readonly number[], cuts: readonly number[], quotas: readonly number[], lambda: number, out: Float32Array, spans?: readonly QuotaSpan[]): Promise<number[]>;
  /** taskVectorHistogram of two encoded tensors' values (equal element counts), without F32 copies: the same bins as decode + taskVectorHistogram. */
  taskVectorHistogramEncoded?(base: EncodedTensor, x: EncodedTensor, level: 0 | 1, prefix: number, into: Uint32Array): Promise<HistogramBins | void>;
  /**
   * Optional TIES statistics step, the elements near the cut: of |fround(x − base)| as F32 bits
   * (NaN's lie above +Inf's), counts those above `hi` and writes those in [lo, hi] to `into` in
   * index order, as many as it holds (the rest are counted, not written). One pass in place of a
   * 65536-bin histogram when few elements lie in the window.
   */
  taskVectorWindow?(base: Float32Array, x: Float32Array, lo: number, hi: number, into: Uint32Array): Promise<TaskVectorWindow>;
  /** taskVectorWindow of two encoded tensors' values (equal element counts), without F32 copies. */
  taskVectorWindowEncoded?(base: EncodedTensor, x: EncodedTensor, lo: number, hi: number, into: Uint32Array): Promise<TaskVectorWindow>;
  /**
   * taskVectorWindowEncoded of several task vectors over one base in one pass (the base read
   * once): task vector K's window is `windows[K]`, its magnitudes in it go to `into[K]`. The same
   * counts, lists and parts as one call per task vector. A window's `expected`, when given, is the
   * fraction of the elements the caller expects in it: a backend may size its staging from it
   * (the results do not depend on it).
   */
  taskVectorWindowsEncoded?(base: EncodedTensor, xs: readonly EncodedTensor[], windows: readonly { readonly lo: number; readonly hi: number; readonly expected?: number }[], into: readonly Uint32Array[]): Promise<TaskVectorWindow[]>;
  /**
   * tiesMerge of encoded tensors' values, its result encoded into `outDtype` (`out` holds
   * base's element count in that dtype): the same bytes as decode + tiesMerge + encode, without
   * F32 copies (`spans` as for tiesMerge). Returns how many cut-equal elements each task vector kept.
   */
  tiesMergeEncoded?(base: EncodedTensor, models: readonly EncodedTensor[], weights: readonly number[], cuts: readonly number[], quotas: readonly number[], lambda: number, outDtype: DType, out: Uint8Array, spans?: readonly QuotaSpan[]): Promise<number[]>;
  /**
   * Optional DARE drop step for several task vectors, split across the threads: x[e] = 0 where
   * element offset + e of the key is dropped (the counter-based draw of `seed` at that index is
   * below dropRate·2^32, see drawBits), else (x[e] − base[e]) / (1 − dropRate), in F32 (the
   * difference rounded, then divided by the density rounded to F32: mergekit's arithmetic).
   * `offset`: the element index in the key of x[0] (non-zero for a chunk).
   */
  dareDrop?(tasks: readonly { readonly x: Float32Array; readonly base: Float32Array; readonly seed: number }[], dropRate: number, offset: number): Promise<void>;
  /**
   * Optional DARE merge of encoded tensors' values, its result encoded into `outDtype` (`out`
   * holds base's element count in that dtype): the same bytes as decode + dareDrop (task vector
   * i drawing from `seeds[i]`, element 0 at index `offset`) + combineTaskVectors + encode,
   * without F32 copies. Each thread draws its own range's keep masks in the merge kernel.
   */
  dareMergeEncoded?(base: EncodedTensor, models: readonly EncodedTensor[], seeds: readonly number[], offset: number, dropRate: number, weights: readonly number[], lambda: number, electSign: boolean, outDtype: DType, out: Uint8Array): Promise<Uint8Array>;
  /** Optional DARE combine step (merge-engine's combineTaskVectors): out = base + λ·(disjoint or weighted) mean of the deltas, in mergekit's F32 arithmetic. */
  combineTaskVectors?(base: Float32Array, deltas: readonly Float32Array[], weights: readonly number[], lambda: number, electSign: boolean, out: Float32Array): Promise<Float32Array>;
  /**
   * Optional add-difference step (merge-engine's add_difference) on encoded tensors' values: a + α·(b − c)
   * encoded into `outDtype`, the same bytes as decode + sub + scale + add + encode (each step
   * rounded to F32) without F32 copies.
   */
  addDifferenceEncoded?(a: EncodedTensor, b: EncodedTensor, c: EncodedTensor, alpha: number, outDtype: DType, out?: Uint8Array): Promise<Uint8Array>;
  /**
   * Optional train-difference step (merge-engine's train_difference) on encoded tensors' values: per
   * element in F64, a + scale·(b − c)·|b − a| / (|b − a| + |b − c|), or a where that denominator
   * is 0, rounded to F32 and encoded into `outDtype`.
   */
  trainDifferenceEncoded?(a: EncodedTensor, b: EncodedTensor, c: EncodedTensor, scale: number, outDtype: DType, out?: Uint8Array): Promise<Uint8Array>;
  /** Optional consensus merge (inverse-distance weighting per element, see merge-engine's consensus). */
  consensus?(inputs: readonly Float32Array[], exponent: number, out: Float32Array): Promise<Float32Array>;
  /** consensus of encoded tensors' values, encoded into `outDtype`: the same bytes as decode + consensus + encode, without F32 copies. */
  consensusEncoded?(inputs: readonly EncodedTensor[], exponent: number, outDtype: DType, out?: Uint8Array): Promise<Uint8Array>;
  /** Optional slerp statistics in one read: [Σ a·b, Σ a², Σ b²], accumulated in F64 as `dot` adds (the same bits as three dots). */
  dotAndNorms?(a: Float32Array, b: Float32Array): Promise<[number, number, number]>;
  /** dotAndNorms of two encoded tensors' values (equal element counts), without F32 copies; the same sums as decode + dotAndNorms. */
  dotAndNormsEncoded?(a: EncodedTensor, b: EncodedTensor): Promise<[number, number, number]>;

  /**
   * Optional truncated SVD of A [m×n] (row-major F32) by randomized subspace iteration, the
   * same arithmetic as `randomizedSvd` (bit-identical results). The CPU backend runs the whole
   * SVD on one worker when A lives in a SharedArrayBuffer, so several calls in flight use
   * several workers; otherwise it runs on the calling thread.
   */
  randomizedSvd?(a: Float32Array, m: number, n: number, rank: number, options?: RandomizedSvdOptions): Promise<TruncatedSvd>;

  /** Releases workers or GPU memory. The backend is unusable afterwards. */
  close(): Promise<void>;
}

/** A tensor's (or a chunk's) little-endian bytes and their dtype, as the *Encoded ops take them. */
export interface EncodedTensor {
  readonly bytes: Uint8Array;
  readonly dtype: DType;
}

export type DeviceChoice = "auto" | "cpu" | "gpu";
