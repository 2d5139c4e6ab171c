import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, createSafetensorsWriter, decodeToF32, dtypeSize, encodeFromF32, openSafetensors, shapeElementCount, writeSafetensors, type DType, type InMemoryTensor, type KernelBackend } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { randomArray, randomChoices, runMethod, runMethodChunked, runMethodChunkedEncoded, withoutMethodKernels, f32Bits } from "../../test/run-method.js";
import { firstEncodedDifference, tempDir, TINY_SD1 } from "@stmerge/test-utils";
import { buildMergePlan } from "../merge/build-merge-plan.js";
import { executeMergePlan } from "../merge/execute-merge-plan.js";
import { createMethodRegistry } from "./method-registry.js";
import { ties } from "./ties.js";

/** Expected outputs from mergekit's formulas in PyTorch, by tools/fixtures/ties_mergekit.py. */
interface Case {
  name: string;
  method: string;
  shape: number[];
  scale: number;
  inputs: number[][];
  weights: number[];
  params: Record<string, unknown>;
  expected: number[];
  streamChunk?: number;
}
const fixture = JSON.parse(readFileSync(new URL("../../test/fixtures/ties-mergekit.json", import.meta.url), "utf8")) as { cases: Case[] };
const inputsOf = (c: Case) => c.inputs.map((x) => x.map((v) => v * c.scale));
const registry = createMethodRegistry();
// The expected values are mergekit's F32 results. `ties` and `dare` (with `ties`) compute in F32
// in mergekit's order, so their results equal them bit for bit; `slerp` accumulates in F64
// before one rounding, so its are close.
const matchesMergekit = (c: Case, actual: readonly number[]) => {
  const expected = c.expected;
  expect(actual).toHaveLength(expected.length);
  const bad =
    c.method !== "slerp"
      ? actual.findIndex((v, i) => !Object.is(Math.fround(v), Math.fround(expected[i]!)))
      : actual.findIndex((v, i) => !(Math.abs(v - expected[i]!) <= 1e-7 + 1e-6 * Math.abs(expected[i]!)));
  expect(bad, bad < 0 ? "" : `element ${bad}: ${actual[bad]} vs ${expected[bad]}`).toBe(-1);
};

const dirs: string[] = [];
const kernels = createCpuKernelBackend({ workers: 0 });
afterAll(async () => {
  await kernels.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("ties and dare-ties against mergekit's formulas (whole tensor)", () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    matchesMergekit(c, await runMethod(registry.get(c.method), inputsOf(c), c.params, { weights: c.weights, shape: c.shape }));
  });
});

const KEY = "model.diffusion_model.input_blocks.4.0.in_layers.2.weight";

/** A tiny SD1 file (zeros) plus KEY holding `values` as F32. */
async function writeModel(path: string, values: readonly number[], shape: number[]): Promise<string> {
  const tensors: InMemoryTensor[] = TINY_SD1.map((t) => ({ name: t.name, dtype: t.dtype ?? "F16", shape: t.shape, data: new Uint8Array(shapeElementCount(t.shape) * dtypeSize(t.dtype ?? "F16")) }));
  tensors.push({ name: KEY, dtype: "F32", shape, data: new Uint8Array(Float32Array.from(values).buffer) });
  await writeSafetensors(path, tensors, {});
  return path;
}

describe("streamed over chunks smaller than the key (statistics passes, then the merge pass)", () => {
  it.each(fixture.cases.filter((c) => c.streamChunk).map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const dir = tempDir();
    dirs.push(dir);
    const method = registry.get(c.method);
    const paths = await Promise.all(inputsOf(c).map((x, i) => writeModel(join(dir, `m${i}.safetensors`), x, c.shape)));
    const sources = await Promise.all(paths.map((p) => openSafetensors(p)));
    try {
      const inputs = sources.map((s, i) => ({ name: `m${i}`, path: s.path, descriptors: s.descriptors, metadata: s.metadata, weight: c.weights[i]! }));
      const plan = buildMergePlan(inputs, { method, params: c.params, maxChunkElements: c.streamChunk! });
      const entry = plan.entries.find((e) => e.key === KEY)!;
      expect(entry).toMatchObject({ chunkElements: c.streamChunk, statisticsPasses: method.statistics!.passes });
      const out = join(dir, "out.safetensors");
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(out), kernels, method });
      const merged = await openSafetensors(out);
      try {
        matchesMergekit(c, Array.from(decodeToF32(await merged.read(KEY), "F32")));
      } finally {
        await merged.close();
      }
    } finally {
      await Promise.all(sources.map((s) => s.close()));
    }
  });
});

describe("ties", () => {
  it("keeps exactly ⌊density·n⌋ deltas, equal magnitudes at the cut by lower index", async () => {
    // |δ| = 1, 1, 1, 1 with density 0.5: the first two are kept.
    expect(await runMethod(ties, [[0, 0, 0, 0], [1, -1, 1, -1]], { density: 0.5 }, { weights: [0, 1] })).toEqual([1, -1, 0, 0]);
    // 5 × 0.5 = 2.5 keeps 2 (mergekit's int(), not round()).
    expect(await runMethod(ties, [[0, 0, 0, 0, 0], [5, 4, 3, 2, 1]], { density: 0.5 }, { weights: [0, 1] })).toEqual([5, 4, 0, 0, 0]);
  });

  it("elects the majority sign and averages only agreeing deltas; a zero sum elects +", async () => {
    // Deltas +1, +1, −3: their sum −1 elects "−", so only −3 is averaged.
    expect(await runMethod(ties, [[0], [1], [1], [-3]], { density: 1 }, { weights: [1, 1, 1, 1] })).toEqual([-3]);
    expect(await runMethod(ties, [[0], [2], [2], [-3]], { density: 1 }, { weights: [1, 1, 1, 1] })).toEqual([2]);
    expect(await runMethod(ties, [[0], [2], [-2]], { density: 1 }, { weights: [1, 1, 1] })).toEqual([2]);
  });

  it("density 0 returns the base", async () => {
    expect(await runMethod(ties, [[1, 2], [5, 5]], { density: 0 })).toEqual([1, 2]);
  });
});

/**
 * TIES by its definition, with a sort instead of histograms: per task vector the ⌊density·n⌋
 * largest |δ| (lower index first among equal ones), sign elected from Σ wᵢδᵢ (+ at 0), the
 * disjoint weighted mean in F64, rounded once.
 */
function tiesBySort(inputs: readonly Float32Array[], weights: readonly number[], density: number, lambda: number): Float32Array {
  const [base, ...models] = inputs as [Float32Array, ...Float32Array[]];
  const n = base.length;
  const k = Math.floor(density * n);
  const deltas = models.map((x) => {
    const d = Float32Array.from(x, (v, e) => v - base[e]!);
    const order = Array.from({ length: n }, (_, e) => e).sort((a, b) => Math.abs(d[b]!) - Math.abs(d[a]!) || a - b);
    const keep = new Uint8Array(n);
    for (let r = 0; r < k; r++) keep[order[r]!] = 1;
    return d.map((v, e) => (keep[e] ? v : 0));
  });
  // F32 arithmetic, each operation rounded (fround of an F64 operation on F32 values).
  const f = Math.fround;
  const w = weights.slice(1).map(f);
  return Float32Array.from(base, (b, e) => {
    const sum = deltas.reduce((s, d, i) => f(s + f(w[i]! * d[e]!)), 0);
    let num = 0;
    let den = 0;
    deltas.forEach((d, i) => {
      const wd = f(w[i]! * d[e]!);
      if (sum >= 0 ? wd > 0 : wd < 0) {
        num = f(num + wd);
        den = f(den + w[i]!);
      }
    });
    return b + f(f(lambda) * (den === 0 ? 0 : f(num / den)));
  });
}

/**
 * `threads`, counting the statistics calls, recording how far each window call overflowed its
 * room, and counting the merge calls given the quotas' spans and those with a cut-equal quota
 * to split and no spans (the backend counts on the threads first).
 */
function counting(threads: KernelBackend) {
  const calls = { histogram: 0, window: 0, windows: 0, overflow: 0, spans: 0, counted: 0 };
  const kernels: KernelBackend = {
    ...threads,
    taskVectorWindowsEncoded: async (base, xs, windows, into) => {
      calls.windows++;
      const found = await threads.taskVectorWindowsEncoded!(base, xs, windows, into);
      found.forEach((f, k) => (calls.overflow = Math.max(calls.overflow, f.inWindow - into[k]!.length)));
      return found;
    },
    tiesMerge: (...a) => (a[7] ? calls.spans++ : a[4].some((q) => q > 0) && calls.counted++, threads.tiesMerge!(...a)),
    tiesMergeEncoded: (...a) => (a[8] ? calls.spans++ : a[4].some((q) => q > 0) && calls.counted++, threads.tiesMergeEncoded!(...a)),
    taskVectorHistogram: (...a) => (calls.histogram++, threads.taskVectorHistogram!(...a)),
    taskVectorHistogramEncoded: (...a) => (calls.histogram++, threads.taskVectorHistogramEncoded!(...a)),
    taskVectorWindow: async (base, x, lo, hi, into) => {
      calls.window++;
      const found = await threads.taskVectorWindow!(base, x, lo, hi, into);
      calls.overflow = Math.max(calls.overflow, found.inWindow - into.length);
      return found;
    },
    taskVectorWindowEncoded: async (base, x, lo, hi, into) => {
      calls.window++;
      const found = await threads.taskVectorWindowEncoded!(base, x, lo, hi, into);
      calls.overflow = Math.max(calls.overflow, found.inWindow - into.length);
      return found;
    },
  };
  return { calls, kernels };
}

/** n samples of N(0, scale²) from a seeded stream (Box–Muller). */
function gaussian(n: number, seed: number, scale: number): Float32Array {
  const u = randomArray(2 * n, seed).map((v) => (v + 1) / 2);
  return Float32Array.from({ length: n }, (_, i) => scale * Math.sqrt(-2 * Math.log(u[2 * i]! || 1e-12)) * Math.cos(2 * Math.PI * u[2 * i + 1]!));
}

describe("ties on large tensors, whole and in chunks, against the definition", () => {
  const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 4096 });
  afterAll(() => pooled.close());

  it("keeps exactly the ⌊density·n⌋ largest deltas of 150,000 (F32, and F16 through the encoded path), in one statistics pass (a sampled window per task vector and chunk)", async () => {
    const n = 150_000;
    const inputs = [gaussian(n, 1, 0.05), gaussian(n, 2, 0.05), gaussian(n, 3, 0.05)];
    for (const [density, chunk] of [[0.3, n], [0.05, 70_000], [0.9, 70_000]] as const) {
      const { calls, kernels } = counting(pooled);
      const actual = await runMethodChunked(ties, kernels, inputs, { density, lambda: 1 }, { weights: [0, 0.6, 0.4], chunk });
      expect(f32Bits(actual), `density ${density}, chunk ${chunk}`).toEqual(f32Bits(tiesBySort(inputs, [0, 0.6, 0.4], density, 1)));
      // Every merge call knows each thread range's share of the cut-equal elements from the lists.
      expect(calls, `density ${density}, chunk ${chunk}`).toEqual({ histogram: 0, window: 2 * Math.ceil(n / chunk), windows: 0, overflow: calls.overflow, spans: calls.spans, counted: 0 });
      expect(calls.overflow).toBeLessThanOrEqual(0);
      expect(calls.spans).toBeGreaterThan(0);
    }
    const encoded = inputs.map((x) => ({ bytes: encodeFromF32(x, "F16"), dtype: "F16" as const }));
    const { calls, kernels } = counting(pooled);
    const bytes = await runMethodChunkedEncoded(ties, kernels, encoded, "F16", { density: 0.3 }, { weights: [0, 0.6, 0.4], chunk: 70_000 });
    // Encoded, both task vectors' windows in one pass over each chunk.
    expect(calls).toMatchObject({ histogram: 0, window: 0, windows: 3, counted: 0 });
    expect(calls.spans).toBeGreaterThan(0);
    const expected = encodeFromF32(tiesBySort(encoded.map((e) => decodeToF32(e.bytes, "F16")), [0, 0.6, 0.4], 0.3, 1), "F16");
    expect(Buffer.from(bytes).equals(Buffer.from(expected))).toBe(true);
  });

  it("keeps the first of many equal magnitudes at the cut, across chunks and thread ranges", async () => {
    const n = 150_000;
    const tied = [0, 1, 2].map((i) => randomChoices(n, 40 + i, [0, 0.5, -0.5, 1, -1, 2, -2, 0.25]));
    const { calls, kernels } = counting(pooled);
    expect(f32Bits(await runMethodChunked(ties, kernels, tied, { density: 0.3 }, { weights: [0, 0.6, 0.4], chunk: 70_000 }))).toEqual(f32Bits(tiesBySort(tied, [0, 0.6, 0.4], 0.3, 1)));
    // The cut's bin listed, its quota split over the chunks and thread ranges from that list.
    expect(calls.counted).toBe(0);
    expect(calls.spans).toBeGreaterThan(0);
  });

  describe("when the sample of the first chunk misleads: the histogram passes, the same deltas", () => {
    const n = 140_000;
    const chunks = 2; // of 70,000
    /** The first element whose bits differ, or −1 (a diff of 140,000 elements would take minutes to print). */
    const firstDifference = (a: Float32Array, b: Float32Array) => {
      const [x, y] = [new Uint32Array(a.buffer, a.byteOffset, a.length), new Uint32Array(b.buffer, b.byteOffset, b.length)];
      return x.length !== y.length ? 0 : x.findIndex((v, i) => v !== y[i]);
    };
    const weights = [0, 0.6, 0.4];

    it.each([
      ["a thousandth of the others' (its window lies below the cut)", 0.001],
      ["a thousand times the others' (its window lies above the cut)", 1000],
    ])("when the first chunk misleads the sample, its deltas %s, takes the histograms and gives the same deltas", async (_what, scale) => {
      const base = gaussian(n, 21, 0.05);
      const models = [22, 23].map((seed) => {
        const x = gaussian(n, seed, 0.05);
        for (let e = 0; e < 70_000; e++) x[e] = base[e]! + (x[e]! - base[e]!) * scale;
        return x;
      });
      const inputs = [base, ...models];
      const { calls, kernels } = counting(pooled);
      const actual = await runMethodChunked(ties, kernels, inputs, { density: 0.3 }, { weights, chunk: 70_000 });
      expect(firstDifference(actual, tiesBySort(inputs, weights, 0.3, 1))).toBe(-1);
      // Level 0 of each task vector over the chunks, then its cut bin's window; before them, for
      // one or both, pass 0's missed windows (a sample that spreads over too wide a window takes
      // level 0 in pass 0 instead).
      expect(calls.histogram).toBe(2 * chunks);
      expect(calls.window).toBeGreaterThanOrEqual(3 * chunks);
      // Encoded (F16), the windows of both task vectors in one pass: the same deltas.
      const encoded = inputs.map((x) => ({ bytes: encodeFromF32(x, "F16"), dtype: "F16" as const }));
      const counted = counting(pooled);
      const bytes = await runMethodChunkedEncoded(ties, counted.kernels, encoded, "F16", { density: 0.3 }, { weights, chunk: 70_000 });
      expect(counted.calls.windows + counted.calls.window).toBeGreaterThan(0);
      expect(firstDifference(decodeToF32(bytes, "F16"), decodeToF32(encodeFromF32(tiesBySort(encoded.map((e) => decodeToF32(e.bytes, "F16")), weights, 0.3, 1), "F16"), "F16"))).toBe(-1);
    });

    it("when the window holds more than its room (the first chunk's spread, then a wall of ties in it), takes the histograms and gives the same deltas", async () => {
      const base = new Float32Array(n);
      const first = gaussian(70_000, 31, 0.05);
      // The first chunk's cut magnitude, which the sampled window surrounds: every later delta has it.
      const cut = Math.abs(Float32Array.from(first, Math.abs).sort()[Math.floor(0.7 * 70_000)]!);
      const model = (sign: number) => Float32Array.from({ length: n }, (_, e) => (e < 70_000 ? sign * first[e]! : (e % 3 ? cut : -cut)));
      const inputs = [base, model(1), model(-1)];
      const { calls, kernels } = counting(pooled);
      const actual = await runMethodChunked(ties, kernels, inputs, { density: 0.3 }, { weights, chunk: 70_000 });
      expect(firstDifference(actual, tiesBySort(inputs, weights, 0.3, 1))).toBe(-1);
      expect(calls.overflow).toBeGreaterThan(0);
      expect(calls.histogram).toBe(2 * chunks);
      // Encoded: the windows of both task vectors in one pass overflow alike.
      const encoded = inputs.map((x) => ({ bytes: encodeFromF32(x, "F16"), dtype: "F16" as const }));
      const counted = counting(pooled);
      const bytes = await runMethodChunkedEncoded(ties, counted.kernels, encoded, "F16", { density: 0.3 }, { weights, chunk: 70_000 });
      expect(counted.calls.windows).toBeGreaterThan(0);
      expect(counted.calls.overflow).toBeGreaterThan(0);
      expect(firstDifference(decodeToF32(bytes, "F16"), decodeToF32(encodeFromF32(tiesBySort(encoded.map((e) => decodeToF32(e.bytes, "F16")), weights, 0.3, 1), "F16"), "F16"))).toBe(-1);
    });
  });
});

// simd true runs the WebAssembly kernels where the engine has them; false the JavaScript kernels
// (the fallback for engines without SIMD, which a SIMD host otherwise never runs). Without the
// window, pass 1 bins the cut bin's low 16 bits (as for a bin of more than a million elements).
describe.each([
  [true, true],
  [false, true],
  [true, false],
])("ties on the kernel threads (simd %s, window %s)", (simd, window) => {
  const threads = createCpuKernelBackend({ workers: 2, inlineBelow: 64, simd });
  const pooled: KernelBackend = window ? threads : { ...threads, taskVectorWindow: undefined, taskVectorWindowEncoded: undefined };
  const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
  afterAll(() => threads.close());
  // Few distinct values: many equal magnitudes at the cut, split across chunks and thread ranges.
  const choices = [0, -0, 0.5, -0.5, 1, -1, 1.5, 2, -2, 0.25, 3, -3, Math.fround(0.1), Number.NaN, Number.POSITIVE_INFINITY];

  it("gives the same bits as the reference loop, for random densities, weights, chunk sizes and ties", async () => {
    for (let trial = 0; trial < 40; trial++) {
      const n = 200 + ((trial * 977) % 1800);
      const models = 2 + (trial % 3);
      const inputs = Array.from({ length: models }, (_, i) => randomChoices(n, trial * 31 + i + 1, trial % 2 ? choices.slice(0, 13) : choices));
      const weights = [0, ...Array.from({ length: models - 1 }, (_, i) => [0.6, 0.4, -0.3, 1, -0.6, 1e38][(trial + i) % 6]!)];
      const params = { density: [0.3, 0.5, 0.05, 1, 0, 0.77][trial % 6]!, lambda: trial % 5 ? 1 : 0.7 };
      const chunk = [n, 150, 333, 1000][trial % 4]!;
      const expected = await runMethodChunked(ties, reference, inputs, params, { weights, chunk });
      const actual = await runMethodChunked(ties, pooled, inputs, params, { weights, chunk });
      expect(f32Bits(actual), `trial ${trial}: n ${n}, ${models} models, chunk ${chunk}, ${JSON.stringify(params)}`).toEqual(f32Bits(expected));
    }
  });

  it("on F16, BF16 and mixed inputs, the encoded statistics and merge pass give the reference's bytes", async () => {
    const cases: [DType[], DType][] = [
      [["F16", "F16", "F16"], "F16"],
      [["BF16", "BF16", "BF16"], "BF16"],
      [["F16", "BF16", "F32"], "F16"],
      [["F16", "F16", "F16", "F16"], "BF16"],
    ];
    for (let trial = 0; trial < 24; trial++) {
      const [dtypes, outDtype] = cases[trial % cases.length]!;
      const n = 300 + ((trial * 977) % 1700);
      const encoded = dtypes.map((dtype, i) => {
        const bytes = encodeFromF32(randomChoices(n, trial * 31 + i + 1, trial % 2 ? choices.slice(0, 13) : choices), dtype);
        return { bytes, dtype };
      });
      const weights = [0, ...dtypes.slice(1).map((_, i) => [0.6, 0.4, -0.3, 1][(trial + i) % 4]!)];
      const params = { density: [0.3, 0.5, 0.05, 1, 0, 0.77][trial % 6]!, lambda: trial % 5 ? 1 : 0.7 };
      const chunk = [n, 150, 333, 1000][trial % 4]!;
      const expected = encodeFromF32(await runMethodChunked(ties, reference, encoded.map(({ bytes, dtype }) => decodeToF32(bytes, dtype)), params, { weights, chunk }), outDtype);
      const actual = await runMethodChunkedEncoded(ties, pooled, encoded, outDtype, params, { weights, chunk });
      expect(Buffer.from(actual).equals(Buffer.from(expected)), `trial ${trial}: n ${n}, ${dtypes.join(" ")} → ${outDtype}, chunk ${chunk}, ${JSON.stringify(params)}`).toBe(true);
    }
  });

  it("on tensors the sample places (encoded, the task vectors' windows in one pass when the kernels have it), gives the reference's bytes: F16, BF16 and mixed, two and three task vectors, ties, NaN and Inf, whole and in chunks", async () => {
    const cases: [DType[], DType][] = [
      [["F16", "F16", "F16"], "F16"],
      [["BF16", "BF16", "BF16"], "BF16"],
      [["F16", "BF16", "F16"], "BF16"],
      [["F16", "F16", "F16", "F16"], "F16"],
      [["F16", "F32", "F16"], "F16"],
    ];
    let joint = 0;
    for (let trial = 0; trial < 10; trial++) {
      const [dtypes, outDtype] = cases[trial % cases.length]!;
      const n = 70_000 + ((trial * 7919) % 60_000);
      // Gaussian deltas (the sample places the cut) with a share of values from `choices`.
      const base = gaussian(n, 900 + trial, 0.05);
      const encoded = dtypes.map((dtype, i) => {
        const values = i === 0 ? base : Float32Array.from(gaussian(n, 910 + 10 * trial + i, 0.01), (d, e) => (e % 7 === 3 ? choices[(e * (i + 3)) % choices.length]! : base[e]! + d));
        return { bytes: encodeFromF32(values, dtype), dtype };
      });
      const weights = [0, ...dtypes.slice(1).map((_, i) => [0.6, 0.4, -0.3, 1][(trial + i) % 4]!)];
      const params = { density: [0.3, 0.5, 0.05, 0.77, 0.2][trial % 5]!, lambda: trial % 3 ? 1 : 0.7 };
      const chunk = [n, 70_000, 65_536][trial % 3]!;
      const expected = encodeFromF32(await runMethodChunked(ties, reference, encoded.map(({ bytes, dtype }) => decodeToF32(bytes, dtype)), params, { weights, chunk }), outDtype);
      const { calls, kernels } = counting(pooled);
      const actual = await runMethodChunkedEncoded(ties, kernels, encoded, outDtype, params, { weights, chunk });
      expect(firstEncodedDifference(actual, expected, outDtype), `trial ${trial}: n ${n}, ${dtypes.join(" ")} → ${outDtype}, chunk ${chunk}, ${JSON.stringify(params)}`).toBe(-1);
      if (calls.windows > 0) joint++;
    }
    if (window) expect(joint).toBeGreaterThanOrEqual(8);
  });

  it("finds the cut among magnitudes that share their top 16 bits, the lowest and highest low 16 bits included", async () => {
    const asFloat = (bits: number) => new Float32Array(new Uint32Array([bits]).buffer)[0]!;
    // Deltas (the base is 0) in the bin 0x3f80: low bits 0xffff, 0xfffe, 0x0001 and 0x0000, and
    // a few above and below it.
    const inBin = [0x3f80ffff, 0x3f80fffe, 0x3f800001, 0x3f800000].map(asFloat);
    const values = [...inBin, ...inBin.map((v) => -v), 2, -3, 0.5, 0.25];
    const n = 3000;
    const base = new Float32Array(n);
    for (let trial = 0; trial < 8; trial++) {
      const inputs = [base, randomChoices(n, 70 + trial, values), randomChoices(n, 90 + trial, values)];
      const params = { density: [0.1, 0.2, 0.3, 0.45, 0.5, 0.6, 0.7, 0.05][trial]! };
      const options = { weights: [0, 0.6, 0.4], chunk: trial % 2 ? 1000 : n };
      const expected = await runMethodChunked(ties, reference, inputs, params, options);
      expect(f32Bits(await runMethodChunked(ties, pooled, inputs, params, options)), `trial ${trial}`).toEqual(f32Bits(expected));
    }
  });

  it("runs tensors of 1–5 elements in chunks of 2 on a worker (one range: fewer than threads × 64; under the SIMD width) as the reference", async () => {
    const eager = createCpuKernelBackend({ workers: 2, inlineBelow: 1, simd });
    try {
      for (let n = 1; n <= 5; n++) {
        const inputs = [0, 1, 2].map((i) => randomChoices(n, n * 7 + i, [0, 1, -1, 2, -0]));
        const params = { density: 0.5 };
        const options = { weights: [0, 0.5, 0.5], chunk: 2 };
        expect(f32Bits(await runMethodChunked(ties, eager, inputs, params, options)), `n ${n}`).toEqual(f32Bits(await runMethodChunked(ties, reference, inputs, params, options)));
      }
    } finally {
      await eager.close();
    }
  });

  it("matches mergekit's values when the tensor is streamed in chunks on the threads", async () => {
    for (const c of fixture.cases.filter((x) => x.method === "ties")) {
      const inputs = inputsOf(c).map((x) => Float32Array.from(x));
      matchesMergekit(c, Array.from(await runMethodChunked(ties, pooled, inputs, c.params, { weights: c.weights, chunk: c.streamChunk ?? 70 })));
    }
  });
});
