import type { HistogramBins, TaskVectorWindow } from "@stmerge/core-tensors";
import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";

/** Magnitude rank state of one task vector of one key (see `ties`). */
interface TopK {
  /** Elements to keep: ⌊density·n⌋. */
  readonly k: number;
  /** |δ| as F32 bits: kept when above `threshold`, or equal to it for the first `atThreshold` such elements in index order. */
  threshold: number;
  atThreshold: number;
  /** Elements equal to the threshold kept so far (the merge pass walks the chunks in order). */
  keptAtThreshold: number;
  /** High 16 bits of the threshold once known (pass 0), how many elements lie above that bin, and in it. */
  high: number;
  above: number;
  inBin: number;
  resolved: boolean;
  readonly histogram: Uint32Array;
  /** The bins of `histogram` the kernels added to this pass (all: [0, 65535]). */
  touched: [number, number];
  /** Pass 1 through the kernels' window: the magnitudes in the bin `high`, and how many so far. */
  inBinValues: Uint32Array | undefined;
  inBinFound: number;
}

interface TiesState {
  readonly topK: TopK[];
  /** δ of a slice of one input, as floats and as their bits (no allocation per chunk). */
  readonly scratch: Float32Array;
  readonly bits: Uint32Array;
}

const BINS = 65536;
const SCRATCH = 16384;
/** Pass 1 lists the cut bin's magnitudes (taskVectorWindow) when it holds at most this many, else bins their low 16 bits. */
const MAX_LISTED = 1 << 20;
const NONE = 2 ** 32; // no |δ| bit pattern is above it: keep nothing
const ALL = -1; // every bit pattern is above it: keep everything

/**
 * TIES-merging as published (Yadav et al. 2023) and as mergekit's `ties` implements it: model 0
 * is the base; each other model's task vector δᵢ = xᵢ − base keeps exactly ⌊density·n⌋ values
 * of largest magnitude per tensor (equal magnitudes at the cut: lower index first), the sign is
 * elected per element from the weighted sum Σ wᵢδᵢ (+1 when it is 0), and the weighted mean of
 * the deltas whose sign agrees is added: base + λ·Σ wᵢδᵢ[agree] / Σ wᵢ[agree] (0 where none
 * agree). The k-th largest |δ| is found without sorting: a histogram of the high 16 bits of the
 * F32 magnitudes, then, within the bin holding the cut, of the low 16 bits, each gathered in a
 * streaming pass over the key's chunks; the merge pass itself is element-wise.
 */
export const ties = defineMergeMethod({
  name: "ties",
  description: "mergekit's TIES: base + λ·disjoint mean of sign-elected task vectors trimmed to the top ⌊density·n⌋ by magnitude (model 0 is the base)",
  params: z.object({ density: z.number().min(0).max(1).default(0.2), lambda: z.number().default(1) }),
  arity: { min: 2 },
  usesWeights: true,
  baseWeightIgnored: true,
  blockParams: ["density", "lambda"],
  elementwise: false,
  statistics: {
    passes: 2,
    init(ctx, { density }): TiesState {
      const n = ctx.shape.reduce((a, b) => a * b, 1);
      const k = Math.floor(density * n);
      const topK = ctx.weights.slice(1).map((): TopK => {
        const all = k >= n;
        const resolved = k <= 0 || all;
        return { k, threshold: k <= 0 ? NONE : ALL, atThreshold: 0, keptAtThreshold: 0, high: -1, above: 0, inBin: 0, resolved, histogram: new Uint32Array(resolved ? 0 : BINS), touched: [BINS, -1], inBinValues: undefined, inBinFound: 0 };
      });
      const scratch = new Float32Array(SCRATCH);
      return { topK, scratch, bits: new Uint32Array(scratch.buffer) };
    },
    async gather(pass, ctx, [base, ...models], _params, state: TiesState) {
      const histogram = ctx.kernels.taskVectorHistogram?.bind(ctx.kernels);
      if (histogram) {
        await gatherOnThreads(pass, base!, models, state, histogram, ctx.kernels.taskVectorWindow?.bind(ctx.kernels));
        return;
      }
      // The reference, on this thread (backends without the kernel).
      const { scratch, bits } = state;
      models.forEach((x, i) => {
        const t = state.topK[i]!;
        if (t.resolved) return;
        const h = t.histogram;
        for (let off = 0; off < x.length; off += SCRATCH) {
          const m = Math.min(SCRATCH, x.length - off);
          for (let j = 0; j < m; j++) scratch[j] = x[off + j]! - base![off + j]!;
          if (pass === 0) for (let j = 0; j < m; j++) h[(bits[j]! & 0x7fffffff) >>> 16]!++;
          else
            for (let j = 0; j < m; j++) {
              const b = bits[j]! & 0x7fffffff;
              if (b >>> 16 === t.high) h[b & 0xffff]!++;
            }
        }
        t.touched = [0, BINS - 1];
      });
    },
    // The same bins straight from the encoded bytes, when the kernels have it (and the F32
    // histogram, which `gather` would use: the two give the same bins).
    async gatherEncoded(pass, ctx, [base, ...models], _params, state: TiesState) {
      const histogram = ctx.kernels.taskVectorHistogramEncoded?.bind(ctx.kernels);
      if (!histogram || !ctx.kernels.taskVectorHistogram) return false;
      // The window only with its F32 form too: gather (F32) must be able to take the same path.
      const window = ctx.kernels.taskVectorWindow ? ctx.kernels.taskVectorWindowEncoded?.bind(ctx.kernels) : undefined;
      await gatherOnThreads(pass, base!, models, state, histogram, window);
      return true;
    },
    endPass(pass, state: TiesState) {
      for (const t of state.topK) {
        if (t.resolved) continue;
        const h = t.histogram;
        if (t.inBinValues) {
          // Pass 1 listed the cut bin's magnitudes: their low 16 bits binned here, where only
          // the bins between the lowest and highest of them are read and cleared again.
          const values = t.inBinValues.subarray(0, Math.min(t.inBinFound, t.inBinValues.length));
          let lo = BINS;
          let hi = -1;
          for (const v of values) {
            const low = v & 0xffff;
            h[low]!++;
            if (low < lo) lo = low;
            if (low > hi) hi = low;
          }
          t.touched = [lo, hi];
          t.inBinValues = undefined;
        }
        const [lo, hi] = t.touched;
        // The bin holding the k-th largest magnitude, counting from the top: bins above the
        // highest one touched are empty, so the count starts there.
        const need = pass === 0 ? t.k : t.k - t.above;
        let count = 0;
        let bin = Math.max(0, Math.min(hi, BINS - 1));
        for (; bin > 0 && count + h[bin]! < need; bin--) count += h[bin]!;
        if (pass === 0) {
          t.high = bin;
          t.above = count;
          t.inBin = h[bin]!;
          if (count + h[bin]! === t.k) {
            // The whole bin is kept: everything at or above its first bit pattern.
            t.threshold = bin * 65536 - 1;
            t.resolved = true;
          }
        } else {
          t.threshold = t.high * 65536 + bin;
          t.atThreshold = need - count;
          t.resolved = true;
        }
        if (lo <= hi) h.fill(0, lo, hi + 1);
        t.touched = [BINS, -1];
      }
      return state.topK.every((t) => t.resolved);
    },
  },
  async merge(ctx, [base, ...models], { lambda }) {
    const state = ctx.statistics as TiesState;
    const m = models.length;
    const { cut, at, kept, w } = cutsOf(state, ctx.weights);
    if (ctx.kernels.tiesMerge) {
      // The same pass on the kernel threads (each thread's share of the cut-equal elements is counted first).
      const keptNow = await ctx.kernels.tiesMerge(base!, models, Array.from(w), Array.from(cut), quotasOf(state), lambda, ctx.out);
      state.topK.forEach((t, i) => (t.keptAtThreshold += keptNow[i]!));
      return ctx.out;
    }
    // The reference, on this thread: one fused pass: trim, elect the sign (+1 at a zero sum),
    // disjoint weighted mean (mergekit's get_mask on wᵢδᵢ).
    const deltas = new Float64Array(m);
    const out = ctx.out;
    const b0 = base!;
    for (let e = 0; e < out.length; e++) {
      const b = b0[e]!;
      let sum = 0;
      for (let i = 0; i < m; i++) {
        let d = Math.fround(models[i]![e]! - b);
        const a = Math.abs(d);
        if (!(a > cut[i]!)) {
          if (a === cut[i]! && kept[i]! < at[i]!) kept[i]!++;
          else d = 0;
        }
        deltas[i] = d;
        sum += w[i]! * d;
      }
      const positive = sum >= 0;
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        const wd = w[i]! * deltas[i]!;
        if (positive ? wd > 0 : wd < 0) {
          num += wd;
          den += w[i]!;
        }
      }
      out[e] = b + lambda * (den === 0 ? 0 : num / den);
    }
    state.topK.forEach((t, i) => (t.keptAtThreshold = kept[i]!));
    return out;
  },
  // The merge pass on the encoded bytes, encoded straight into the output dtype: merge + encode's
  // bytes without F32 copies of the inputs (kernels without it, or with LoRAs to add, take `merge`).
  async mergeEncoded(ctx, [base, ...models], { lambda }, outDtype, out) {
    if (!ctx.kernels.tiesMergeEncoded || !ctx.kernels.tiesMerge) return undefined;
    const state = ctx.statistics as TiesState;
    const { cut, w } = cutsOf(state, ctx.weights);
    const keptNow = await ctx.kernels.tiesMergeEncoded(base!, models, Array.from(w), Array.from(cut), quotasOf(state), lambda, outDtype, out);
    state.topK.forEach((t, i) => (t.keptAtThreshold += keptNow[i]!));
    return out;
  },
});

/** Per task vector: the cut as an F32 magnitude (−1 keeps all, Infinity none), the cut-equal elements to keep and kept so far, and the weight. */
function cutsOf(state: TiesState, weights: readonly number[]): { cut: Float64Array; at: Float64Array; kept: Float64Array; w: Float64Array } {
  const m = state.topK.length;
  // For non-negative floats, comparing values orders them as their bits do.
  const cut = new Float64Array(m);
  const at = new Float64Array(m);
  const kept = new Float64Array(m);
  const w = Float64Array.from(weights.slice(1));
  const bitsToFloat = new Float32Array(1);
  const bitsView = new Uint32Array(bitsToFloat.buffer);
  state.topK.forEach((t, i) => {
    if (t.threshold === ALL) cut[i] = -1;
    else if (t.threshold === NONE) cut[i] = Infinity;
    else {
      bitsView[0] = t.threshold;
      cut[i] = bitsToFloat[0]!;
    }
    at[i] = t.atThreshold;
    kept[i] = t.keptAtThreshold;
  });
  return { cut, at, kept, w };
}

/**
 * One statistics pass of every unresolved task vector at once on the kernel threads (each split
 * across them), from F32 or encoded inputs: pass 0 bins the magnitudes' top 16 bits; pass 1
 * lists the magnitudes in the cut's bin when the kernels have the window and the bin holds at
 * most MAX_LISTED (usually well under 1% of the elements, where binning their low bits meant
 * reading and clearing all 65536 bins per call), else bins their low 16 bits.
 */
async function gatherOnThreads<T>(
  pass: number,
  base: T,
  models: readonly T[],
  state: TiesState,
  histogram: (base: T, x: T, level: 0 | 1, prefix: number, into: Uint32Array) => Promise<HistogramBins | void>,
  window: ((base: T, x: T, lo: number, hi: number, into: Uint32Array) => Promise<TaskVectorWindow>) | undefined,
): Promise<void> {
  await Promise.all(
    models.map(async (x, i) => {
      const t = state.topK[i]!;
      if (t.resolved) return;
      if (pass === 1 && window && t.inBin <= MAX_LISTED) {
        t.inBinValues ??= new Uint32Array(t.inBin);
        const lo = t.high * 65536;
        const found = await window(base, x, lo, lo + 0xffff, t.inBinValues.subarray(Math.min(t.inBinFound, t.inBin)));
        t.inBinFound += found.inWindow;
        return;
      }
      const [lo, hi] = (await histogram(base, x, pass === 0 ? 0 : 1, t.high, t.histogram)) ?? [0, BINS - 1];
      t.touched = [Math.min(t.touched[0], lo), Math.max(t.touched[1], hi)];
    }),
  );
}

/** How many cut-equal elements each task vector may still keep (this chunk onwards). */
function quotasOf(state: TiesState): number[] {
  return state.topK.map((t) => Math.max(0, t.atThreshold - t.keptAtThreshold));
}
