import { binOfRank, cutInList, decodeToF32, dtypeSize, type EncodedTensor, type HistogramBins, sampleTaskVectorHistogram, type TaskVectorWindow, type WindowPart } from "@stmerge/core-tensors";
import { z } from "zod";
import { defineMergeMethod } from "./merge-method.js";
import { chunkQuotaSpans, type KeptSpan, keptSpans } from "./quota-spans.js";

/** Magnitude rank state of one task vector of one key (see `ties`). */
interface TopK {
  /** Elements to keep: ⌊density·n⌋. */
  readonly k: number;
  /** |δ| as F32 bits: kept when above `threshold`, or equal to it for the first `atThreshold` such elements in index order. */
  threshold: number;
  atThreshold: number;
  /** Elements equal to the threshold kept so far (the merge pass walks the chunks in order). */
  keptAtThreshold: number;
  /** How `atThreshold` splits over the key's element ranges, when a window list showed it (the merge then needs no count). */
  keptSpans: KeptSpan[] | undefined;
  /**
   * The pass that bins the magnitudes' top 16 bits: 1 while pass 0 lists a window around a
   * sampled estimate of the cut (which may find it at once), else 0; the pass after it finds the
   * cut within its bin.
   */
  level0Pass: number;
  /** High 16 bits of the threshold once known (level 0), how many elements lie above that bin, and in it. */
  high: number;
  above: number;
  inBin: number;
  resolved: boolean;
  /** Level 0's and level 1's bins, made when first needed (most task vectors are placed without them). */
  histogram: Uint32Array | undefined;
  /** The bins of `histogram` the kernels added to this pass (all: [0, 65535]). */
  touched: [number, number];
  /** This pass's window through the kernels, when it lists one (the sampled window, or the cut's bin). */
  listed: Listed | undefined;
}

/** A window pass: the magnitudes (F32 bits) in [lo, hi] in index order, as many as `values` holds; how many lie above hi and in the window. */
interface Listed {
  readonly lo: number;
  readonly hi: number;
  /** The fraction of the elements the sample put in the window (the kernels size their staging from it). */
  readonly expected?: number;
  readonly values: Uint32Array;
  above: number;
  found: number;
  /** Which elements (of the key) each run of the list came from, while every window call said. */
  parts: WindowPart[] | undefined;
}

interface TiesState {
  readonly topK: TopK[];
}

const BINS = 65536;
/** Elements per slice of the reference loop, and the most a sample takes. */
const SCRATCH = 32768;
/** The pass after level 0 lists the cut bin's magnitudes (taskVectorWindow) when it holds at most this many, else bins their low 16 bits. */
const MAX_LISTED = 1 << 20;
const NONE = 2 ** 32; // no |δ| bit pattern is above it: keep nothing
const ALL = -1; // every bit pattern is above it: keep everything
/** The sampled window: from the first chunk gathered of a key, of at least this many elements, in blocks of SAMPLE_BLOCK contiguous ones (few cache misses). */
const SAMPLED_MIN = 1 << 16;
/** A key of at most this many elements, whole in its one chunk, has its cut found on this thread from all its magnitudes (no kernel pass: each costs a round trip to the threads). */
const EXACT_MAX = 1 << 14;
const SAMPLE_BLOCK = 64;
/** Half the window's width in standard deviations of the sample's rank of the cut (more when the sample saw only one of several chunks). */
const SAMPLE_SPREAD = 3.5;
/** A window that would list more than this fraction of the sample is no shortcut: that task vector takes the histograms. */
const MAX_WINDOW_FRACTION = 0.2;
/** The largest |δ| bit pattern (NaN's included): a window's `hi` that leaves nothing above it. */
const TOP = 0x7fffffff;
/** Bins for a sample (binTop16, windowAround), zero between them: one set for every key. */
const scratchBins = new Uint32Array(BINS);
// Buffers of the synchronous steps, shared by every key (several keys are in flight, but none
// of these steps awaits): δ of a slice of one input as floats and as their bits (signed, so a
// negative δ's bits stay a small integer for the JIT), a sample's base values and magnitudes
// (made per key, they churned the collector and added to the peak RSS).
const scratch = new Float32Array(SCRATCH);
const scratchBits = new Int32Array(scratch.buffer);
const scratchBase = new Float32Array(SCRATCH);
const scratchMagnitudes = new Uint32Array(SCRATCH);
/** Lists given back after their pass (the largest few), for later windows: a list is written before it is read. */
const spareLists: Uint32Array[] = [];
const SPARE_LISTS = 6;

/** A list of exactly `size` entries (its room), from the spare lists when one is large enough. */
function takeList(size: number): Uint32Array {
  let best = -1;
  spareLists.forEach((list, i) => {
    if (list.length >= size && (best < 0 || list.length < spareLists[best]!.length)) best = i;
  });
  if (best < 0) return new Uint32Array(size);
  return spareLists.splice(best, 1)[0]!.subarray(0, size);
}

function giveBackList(list: Uint32Array): void {
  spareLists.push(new Uint32Array(list.buffer));
  spareLists.sort((a, b) => b.length - a.length).splice(SPARE_LISTS);
}

/** A task vector's own bins, which the kernels add to across its chunks. */
function binsOf(t: TopK): Uint32Array {
  return (t.histogram ??= new Uint32Array(BINS));
}

/**
 * TIES-merging as published (Yadav et al. 2023) and as mergekit's `ties` implements it: model 0
 * is the base; each other model's task vector δᵢ = xᵢ − base keeps exactly ⌊density·n⌋ values
 * of largest magnitude per tensor (equal magnitudes at the cut: lower index first), the sign is
 * elected per element from the weighted sum Σ wᵢδᵢ (+1 when it is 0), and the weighted mean of
 * the deltas whose sign agrees is added: base + λ·Σ wᵢδᵢ[agree] / Σ wᵢ[agree] (0 where none
 * agree), in F32 with the weights and λ rounded to F32, each operation in mergekit's order (so
 * its results on F32 tensors, bit for bit). The k-th largest |δ| is found without sorting the
 * tensor, in streaming passes over the key's chunks before the element-wise merge pass. With the
 * kernels' window, one pass usually suffices: a sample of the first chunk gathered (the executor
 * may gather them in any order: anyChunkOrder) places the cut, and the pass counts the
 * magnitudes above a window around it and lists those inside, where the cut is then selected
 * (a small key's from all its magnitudes, with no pass). When the cut falls outside (the sample
 * misled), or without the window: a histogram of the high 16 bits of the F32 magnitudes, then,
 * within the bin holding the cut, a list (or histogram) of the low 16 bits. The sample only
 * decides how fast the cut is found, never which it is.
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
    passes: 3,
    // Counts, bins and lists whose parts say where they lie (keptSpans orders them).
    anyChunkOrder: true,
    init(ctx, { density }): TiesState {
      const n = ctx.shape.reduce((a, b) => a * b, 1);
      const k = Math.floor(density * n);
      const windowed = ctx.kernels.taskVectorHistogram !== undefined && ctx.kernels.taskVectorWindow !== undefined;
      const topK = ctx.weights.slice(1).map((): TopK => {
        const all = k >= n;
        const resolved = k <= 0 || all;
        const level0Pass = windowed && !resolved ? 1 : 0;
        return { k, threshold: k <= 0 ? NONE : ALL, atThreshold: 0, keptAtThreshold: 0, keptSpans: undefined, level0Pass, high: -1, above: 0, inBin: 0, resolved, histogram: undefined, touched: [BINS, -1], listed: undefined };
      });
      return { topK };
    },
    async gather(pass, ctx, [base, ...models], _params, state: TiesState) {
      const histogram = ctx.kernels.taskVectorHistogram?.bind(ctx.kernels);
      if (histogram) {
        sampleWindows(pass, base!, models, base!.length, ctx.shape, state, floatSamples);
        await gatherOnThreads(pass, base!, models, state, histogram, ctx.kernels.taskVectorWindow?.bind(ctx.kernels), ctx.offset);
        return;
      }
      // The reference, on this thread (backends without the kernel: no window, level 0 in pass 0).
      const bits = scratchBits;
      models.forEach((x, i) => {
        const t = state.topK[i]!;
        if (t.resolved) return;
        const h = binsOf(t);
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
    // The same statistics straight from the encoded bytes, when the kernels have them (and the F32
    // forms, which `gather` would use: the two give the same bins and lists).
    async gatherEncoded(pass, ctx, [base, ...models], _params, state: TiesState) {
      const histogram = ctx.kernels.taskVectorHistogramEncoded?.bind(ctx.kernels);
      if (!histogram || !ctx.kernels.taskVectorHistogram) return false;
      const window = ctx.kernels.taskVectorWindow ? ctx.kernels.taskVectorWindowEncoded?.bind(ctx.kernels) : undefined;
      // A pass that lists a sampled window needs the window: `gather` (F32) has it then.
      if (!window && state.topK.some((t) => !t.resolved && pass < t.level0Pass)) return false;
      const length = base!.bytes.byteLength / dtypeSize(base!.dtype);
      sampleWindows(pass, base!, models, length, ctx.shape, state, encodedSamples);
      await gatherOnThreads(pass, base!, models, state, histogram, window, ctx.offset, window && ctx.kernels.taskVectorWindowsEncoded?.bind(ctx.kernels));
      return true;
    },
    endPass(pass, state: TiesState) {
      for (const t of state.topK) {
        if (t.resolved) continue;
        const stage = pass - t.level0Pass;
        if (t.listed) {
          const { lo, hi, values, above, found, parts } = t.listed;
          t.listed = undefined;
          const need = t.k - above;
          // A sampled window that missed the cut, or overflowed its list: the histograms from the next pass.
          if (need > 0 && need <= found && found <= values.length) {
            const list = values.subarray(0, found);
            [t.threshold, t.atThreshold] = cutInList(list, lo, hi, need);
            if (parts && t.atThreshold > 0) t.keptSpans = keptSpans(list, parts, t.threshold, t.atThreshold);
            t.resolved = true;
          }
          giveBackList(values);
          continue;
        }
        if (stage < 0) continue;
        const h = binsOf(t);
        const [lo, hi] = t.touched;
        // The bin holding the k-th largest magnitude, counting from the top: bins above the
        // highest one touched are empty, so the count starts there.
        const need = stage === 0 ? t.k : t.k - t.above;
        const [bin, count] = binOfRank(h, Math.max(0, Math.min(hi, BINS - 1)), need);
        if (stage === 0) {
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
      // The same pass on the kernel threads (each thread's share of the cut-equal elements is
      // known from the window's list, or counted first).
      const split = chunkQuotaSpans(state.topK.map((t) => t.keptSpans), quotasOf(state), ctx.offset, ctx.out.length);
      const keptNow = await ctx.kernels.tiesMerge(base!, models, Array.from(w), Array.from(cut), split?.quotas ?? quotasOf(state), lambda, ctx.out, split?.spans);
      state.topK.forEach((t, i) => (t.keptAtThreshold += keptNow[i]!));
      return ctx.out;
    }
    // The reference, on this thread: one fused pass: trim, elect the sign (+1 at a zero sum),
    // disjoint weighted mean (mergekit's get_mask on wᵢδᵢ), in F32 like mergekit on F32 tensors
    // (fround of an F64 operation on F32 values is the F32 operation's result).
    const wds = new Float64Array(m);
    const out = ctx.out;
    const b0 = base!;
    const lambda32 = Math.fround(lambda);
    const w32 = w.map(Math.fround);
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
        wds[i] = Math.fround(w32[i]! * d);
        sum = Math.fround(sum + wds[i]!);
      }
      const positive = sum >= 0;
      let num = 0;
      let den = 0;
      for (let i = 0; i < m; i++) {
        const wd = wds[i]!;
        if (positive ? wd > 0 : wd < 0) {
          num = Math.fround(num + wd);
          den = Math.fround(den + w32[i]!);
        }
      }
      out[e] = b + Math.fround(lambda32 * (den === 0 ? 0 : Math.fround(num / den)));
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
    const split = chunkQuotaSpans(state.topK.map((t) => t.keptSpans), quotasOf(state), ctx.offset, base!.bytes.byteLength / dtypeSize(base!.dtype));
    const keptNow = await ctx.kernels.tiesMergeEncoded(base!, models, Array.from(w), Array.from(cut), split?.quotas ?? quotasOf(state), lambda, outDtype, out, split?.spans);
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

/** Task vectors' windows over one base in one pass (the kernels' taskVectorWindowsEncoded), one or several. */
type Windows<T> = (base: T, xs: readonly T[], windows: readonly { lo: number; hi: number; expected?: number }[], into: readonly Uint32Array[]) => Promise<TaskVectorWindow[]>;

/**
 * One statistics pass of every unresolved task vector at once on the kernel threads (each split
 * across them), from F32 or encoded inputs: a window's pass (the sampled one, or the cut's bin
 * when the kernels have the window and it holds at most MAX_LISTED: usually well under 1% of the
 * elements, where binning their low bits meant reading and clearing all 65536 bins per call)
 * counts the magnitudes above it and lists those in it — every task vector's window in one pass
 * over the base when the kernels have `windows` —; otherwise level 0 bins the
 * magnitudes' top 16 bits, level 1 the low 16 bits of those in the cut's bin.
 */
async function gatherOnThreads<T>(
  pass: number,
  base: T,
  models: readonly T[],
  state: TiesState,
  histogram: (base: T, x: T, level: 0 | 1, prefix: number, into: Uint32Array) => Promise<HistogramBins | void>,
  window: ((base: T, x: T, lo: number, hi: number, into: Uint32Array) => Promise<TaskVectorWindow>) | undefined,
  offset: number,
  windows?: Windows<T>,
): Promise<void> {
  const windowed: number[] = [];
  const binned: number[] = [];
  models.forEach((_, i) => {
    const t = state.topK[i]!;
    if (t.resolved) return;
    if (pass - t.level0Pass === 1 && window && t.inBin <= MAX_LISTED) t.listed ??= { lo: t.high * 65536, hi: t.high * 65536 + 0xffff, values: takeList(t.inBin), above: 0, found: 0, parts: [] };
    (t.listed && window ? windowed : binned).push(i);
  });
  const into = (listed: Listed) => listed.values.subarray(Math.min(listed.found, listed.values.length));
  const record = (listed: Listed, found: TaskVectorWindow) => {
    listed.above += found.above;
    listed.found += found.inWindow;
    // The parts in key positions; a call without them leaves the list's origin unknown.
    listed.parts = found.parts && listed.parts?.concat(found.parts.map((p) => ({ ...p, from: p.from + offset, to: p.to + offset })));
  };
  const listedOf = (i: number) => state.topK[i]!.listed!;
  const windowCalls =
    windows && windowed.length > 0
      ? [windows(base, windowed.map((i) => models[i]!), windowed.map(listedOf), windowed.map((i) => into(listedOf(i)))).then((found) => found.forEach((f, j) => record(listedOf(windowed[j]!), f)))]
      : windowed.map(async (i) => record(listedOf(i), await window!(base, models[i]!, listedOf(i).lo, listedOf(i).hi, into(listedOf(i)))));
  await Promise.all([
    ...windowCalls,
    ...binned.map(async (i) => {
      const t = state.topK[i]!;
      const [lo, hi] = (await histogram(base, models[i]!, pass - t.level0Pass === 0 ? 0 : 1, t.high, binsOf(t))) ?? [0, BINS - 1];
      t.touched = [Math.min(t.touched[0], lo), Math.max(t.touched[1], hi)];
    }),
  ]);
}

/**
 * How sampleWindows reads inputs of one kind (F32 arrays, or encoded bytes): `whole` copies or
 * decodes the first `n` values of `x` into `out`; `sampleBins` adds the level-0 bins of the
 * magnitudes |fround(x − base)| of the blocks of `block` elements at `starts` to `bins`, and
 * returns the lowest and highest bin it may have counted into.
 */
interface SampleReader<T> {
  whole(x: T, n: number, out: Float32Array): void;
  sampleBins(base: T, x: T, starts: readonly number[], block: number, bins: Uint32Array): [first: number, last: number];
}

const floatSamples: SampleReader<Float32Array> = {
  whole: (x, n, out) => out.set(x.subarray(0, n)),
  sampleBins(base, x, starts, block, bins) {
    const size = starts.length * block;
    starts.forEach((start, j) => {
      scratchBase.set(base.subarray(start, start + block), j * block);
      scratch.set(x.subarray(start, start + block), j * block);
    });
    return binTop16(magnitudesOf(scratchBase.subarray(0, size), size), bins);
  },
};

// The sample's bins from the encoded bytes by core-tensors' kernel (WebAssembly SIMD where the
// engine has it): decoded and binned here in JavaScript, the samples of a merge of three SD1.5
// checkpoints took the main thread 0.21 s, now 0.17 s (most of it gathering the blocks).
const encodedSamples: SampleReader<EncodedTensor> = {
  whole: ({ bytes, dtype }, n, out) => void decodeToF32(bytes.subarray(0, n * dtypeSize(dtype)), dtype, out.subarray(0, n)),
  sampleBins: sampleTaskVectorHistogram,
};

/**
 * The first chunk pass 0 gathers: the windows of the task vectors that may be placed by a sample
 * (level0Pass 1), from blocks of SAMPLE_BLOCK contiguous elements spread over the chunk (about
 * length^⅔ elements: the sample's cost against the list's, which shrinks as its square root),
 * read with `reader`; a key of at most EXACT_MAX elements is placed here from all of them. A
 * task vector whose window would not be selective, or a chunk too small to sample, takes the
 * histograms from this pass on instead.
 */
function sampleWindows<T>(pass: number, base: T, models: readonly T[], length: number, shape: readonly number[], state: TiesState, reader: SampleReader<T>): void {
  const waiting = state.topK.filter((t) => !t.resolved && pass < t.level0Pass && !t.listed);
  if (waiting.length === 0) return;
  const n = shape.reduce((a, b) => a * b, 1);
  if (length === n && n <= EXACT_MAX) {
    // A small key whole: all its magnitudes are the sample, and its cut is found here.
    const baseValues = scratchBase.subarray(0, n);
    reader.whole(base, n, baseValues);
    models.forEach((x, i) => {
      const t = state.topK[i]!;
      if (!waiting.includes(t)) return;
      reader.whole(x, n, scratch);
      [t.threshold, t.atThreshold] = cutInList(magnitudesOf(baseValues, n), 0, TOP, t.k);
      t.resolved = true;
    });
    return;
  }
  if (length < SAMPLED_MIN) {
    for (const t of waiting) t.level0Pass = 0;
    return;
  }
  const blocks = Math.max(16, Math.min(SCRATCH / SAMPLE_BLOCK, Math.round(Math.cbrt(length * length) / SAMPLE_BLOCK)));
  const size = blocks * SAMPLE_BLOCK;
  const starts = Array.from({ length: blocks }, (_, j) => Math.floor((j * (length - SAMPLE_BLOCK)) / (blocks - 1)));
  models.forEach((x, i) => {
    const t = state.topK[i]!;
    if (!waiting.includes(t)) return;
    const [first, last] = reader.sampleBins(base, x, starts, SAMPLE_BLOCK, scratchBins);
    const window = windowAround(scratchBins, first, last, size, t.k / n, length < n);
    scratchBins.fill(0, first, last + 1);
    if (!window) {
      t.level0Pass = 0;
      return;
    }
    // Room for a quarter as many again as the sample predicts (a list that overflows is a miss).
    t.listed = { lo: window.lo, hi: window.hi, expected: window.fraction, values: takeList(Math.min(n, Math.ceil(window.fraction * n * 1.25) + 4096)), above: 0, found: 0, parts: [] };
  });
}

/**
 * The magnitudes |fround(x − base)| as F32 bits of `n` elements (`x` in `scratch`), in
 * `scratchMagnitudes`. Its hot loop, like binTop16's, is a function of its own:
 * V8 optimized neither inside the closures that call them.
 */
function magnitudesOf(base: Float32Array, n: number): Uint32Array {
  const magnitudes = scratchMagnitudes.subarray(0, n);
  for (let e = 0; e < n; e++) {
    scratch[e] = scratch[e]! - base[e]!;
    magnitudes[e] = scratchBits[e]! & 0x7fffffff;
  }
  return magnitudes;
}

/** Bins F32 magnitude bits by their top 16 bits into `bins`, as level 0 does; returns the lowest and highest bin. */
function binTop16(magnitudes: Uint32Array, bins: Uint32Array): [first: number, last: number] {
  let first = BINS;
  let last = -1;
  for (let e = 0; e < magnitudes.length; e++) {
    const bin = magnitudes[e]! >>> 16;
    bins[bin]!++;
    if (bin < first) first = bin;
    if (bin > last) last = bin;
  }
  return [first, last];
}

/**
 * The window around the magnitude with `fraction` of a sample of `size` above it, from the
 * sample's level-0 bins (bins first…last of `histogram`): the whole bins holding the ranks
 * SAMPLE_SPREAD standard deviations of that rank either side (1.25 times as many when the sample
 * is of one chunk of several), as [lo, hi] in F32 bits, and the fraction of the sample inside;
 * undefined when that would be more than MAX_WINDOW_FRACTION.
 */
function windowAround(histogram: Uint32Array, first: number, last: number, size: number, fraction: number, partial: boolean): { lo: number; hi: number; fraction: number } | undefined {
  const spread = SAMPLE_SPREAD * Math.sqrt(size * fraction * (1 - fraction)) * (partial ? 1.25 : 1) + 2;
  // Ranks counted from the top: the window holds those from `top` to `bottom`.
  const top = size * fraction - spread;
  const bottom = size * fraction + spread;
  let hi = top <= 0 ? TOP : -1;
  let lo = 0;
  let count = 0;
  let inside = 0;
  for (let bin = last; bin >= first; bin--) {
    const c = histogram[bin]!;
    if (hi < 0 && count + c > top) hi = bin * 65536 + 0xffff;
    count += c;
    if (hi >= 0) inside += c;
    if (count >= bottom) {
      lo = bin * 65536;
      break;
    }
  }
  if (hi < 0 || inside > MAX_WINDOW_FRACTION * size) return undefined;
  return { lo, hi, fraction: inside / size };
}

/** How many cut-equal elements each task vector may still keep (this chunk onwards). */
function quotasOf(state: TiesState): number[] {
  return state.topK.map((t) => Math.max(0, t.atThreshold - t.keptAtThreshold));
}
