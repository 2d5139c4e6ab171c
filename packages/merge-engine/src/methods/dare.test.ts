import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, decodeToF32, drawBits, encodeFromF32, type DType } from "@stmerge/core-tensors";
import { firstEncodedDifference } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { randomArray, randomChoices, runMethod, runMethodChunked, runMethodChunkedEncoded, withoutMethodKernels, f32Bits } from "../../test/run-method.js";
import { dare } from "./dare.js";
import { randomForKey } from "./seeded-random.js";

describe("dare", () => {
  const base = randomArray(200, 20);
  const models = [randomArray(200, 21), randomArray(200, 22)];

  it("is reproducible for a seed and changes with the seed", async () => {
    const a = await runMethod(dare, [base, ...models], { drop_rate: 0.5 }, { seed: 7, weights: [0, 1, 1] });
    const b = await runMethod(dare, [base, ...models], { drop_rate: 0.5 }, { seed: 7, weights: [0, 1, 1] });
    const c = await runMethod(dare, [base, ...models], { drop_rate: 0.5 }, { seed: 8, weights: [0, 1, 1] });
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
  });

  it("matches a reference built from the same seeded masks", async () => {
    const p = 0.3;
    const weights = [0, 0.7, 0.3];
    const out = await runMethod(dare, [base, ...models], { drop_rate: p, lambda: 0.9 }, { seed: 3, weights });
    const key = "model.diffusion_model.input_blocks.1.0.weight";
    const dropped = models.map((m, i) => {
      const r = randomForKey(3, key, i + 1);
      return m.map((x, e) => (r() < p ? 0 : (x - base[e]!) / (1 - p)));
    });
    out.forEach((v, e) => expect(v).toBeCloseTo(base[e]! + 0.9 * (0.7 * dropped[0]![e]! + 0.3 * dropped[1]![e]!), 5));
  });

  it("drops about p of the elements and keeps the expected delta", async () => {
    const n = 20000;
    const zeros = new Array<number>(n).fill(0);
    const ones = new Array<number>(n).fill(1);
    const out = await runMethod(dare, [zeros, ones], { drop_rate: 0.25 }, { weights: [0, 1] });
    const kept = out.filter((v) => v !== 0);
    expect(Math.abs(kept.length / n - 0.75)).toBeLessThan(0.02);
    kept.forEach((v) => expect(v).toBeCloseTo(1 / 0.75, 5));
  });

  it("with ties, averages only deltas that agree with the elected sign", async () => {
    const out = await runMethod(dare, [[0], [1], [1], [-3]], { drop_rate: 0, ties: true }, { weights: [1, 1, 1, 1] });
    expect(out).toEqual([-3]);
  });

  it("rejects drop_rate 1", () => {
    expect(() => dare.params.parse({ drop_rate: 1 })).toThrow();
  });
});

interface DareCase {
  key: string;
  seed: number;
  params: { drop_rate: number; lambda: number; ties: boolean };
  weights: number[];
  inputs: number[][];
  expected: number[];
}

// Computed in PyTorch with mergekit's DARE formulas and masks from the seeded stream's
// specification (tools/fixtures/dare_reference.py), not from this code.
describe("dare against PyTorch (mergekit formulas)", () => {
  const { cases, draws } = JSON.parse(readFileSync(join(import.meta.dirname, "..", "..", "test", "fixtures", "dare-reference.json"), "utf8")) as { cases: DareCase[]; draws: { seed: number; index: number; draw: number }[] };

  it("draws the specification's bits, at indices past and across 2^32 too", () => {
    expect(draws.length).toBeGreaterThan(40);
    for (const { seed, index, draw } of draws) expect(drawBits(seed, index), `seed ${seed}, index ${index}`).toBe(draw);
  });

  it("the kernels draw the same masks at indices past 2^32 (p = 0.5 on 0 → 1 keeps 2 where the draw is ≥ 2^31)", async () => {
    const backend = createCpuKernelBackend({ workers: 0 });
    try {
      const large = draws.filter(({ index }) => index >= 2 ** 32 - 2);
      expect(large.length).toBeGreaterThanOrEqual(20);
      const eight = (value: number) => ({ bytes: encodeFromF32(new Float32Array(8).fill(value), "F16"), dtype: "F16" as const });
      for (const { seed, index, draw } of large) {
        // Eight elements from a multiple of 8 (one 2^32 block): two task vectors, the second
        // weighted 0, take the WebAssembly kernel.
        const start = index - (index % 8);
        const out = new Uint8Array(16);
        await backend.dareMergeEncoded!(eight(0), [eight(1), eight(1)], [seed, 5], start, 0.5, [1, 0], 1, false, "F16", out);
        expect(decodeToF32(out, "F16")[index - start], `seed ${seed}, index ${index}`).toBe(draw >= 2 ** 31 ? 2 : 0);
      }
    } finally {
      await backend.close();
    }
  });

  it.each(cases.map((c) => [`p=${c.params.drop_rate} λ=${c.params.lambda} ties=${c.params.ties} weights=${c.weights.join(",")}`, c] as const))("%s", async (_, c) => {
    const out = await runMethod(dare, c.inputs, c.params, { seed: c.seed, weights: c.weights, key: c.key });
    expect(out).toHaveLength(c.expected.length);
    // mergekit's F32 arithmetic in its order: the same bits.
    expect(f32Bits(Float32Array.from(out))).toEqual(f32Bits(Float32Array.from(c.expected)));
    // Dropping changes the result: with p > 0 some outputs differ from the undropped weighted mean.
    expect(out.some((v, e) => v !== c.inputs[0]![e])).toBe(true);
  });
});

// simd true runs the WebAssembly kernels where the engine has them; false the JavaScript kernels.
describe.each([true, false])("dare on the kernel threads (simd %s)", (simd) => {
  const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 64, simd });
  afterAll(() => pooled.close());

  it("gives the same bits as the reference loop: the same seeded masks, continued across chunks", async () => {
    const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
    for (let trial = 0; trial < 16; trial++) {
      const n = 400 + trial * 157;
      const models = 2 + (trial % 3);
      // Every fourth trial: few distinct values with ±0, NaN and ±Infinity (the kernel's non-finite path).
      const special = [0, -0, 1, -1, 0.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      const inputs = Array.from({ length: models }, (_, i) => (trial % 4 === 3 ? randomChoices(n, trial * 13 + i + 1, special) : Float32Array.from(randomArray(n, trial * 13 + i + 1))));
      const weights = [0, ...Array.from({ length: models - 1 }, (_, i) => [0.6, 0.4, -0.3, 1][(trial + i) % 4]!)];
      const params = { drop_rate: [0.5, 0.1, 0.9, 0][trial % 4]!, lambda: trial % 3 ? 1 : 0.8, ties: trial % 2 === 1 };
      const options = { weights, chunk: [n, 128, 999][trial % 3]!, seed: trial };
      expect(f32Bits(await runMethodChunked(dare, pooled, inputs, params, options)), `trial ${trial}`).toEqual(f32Bits(await runMethodChunked(dare, reference, inputs, params, options)));
    }
  });

  it("on F16, BF16, F32 and mixed inputs, the encoded merge gives the reference loop's bytes, its masks continued across chunks", async () => {
    const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
    const cases: [DType[], DType][] = [
      [["F16", "F16", "F16"], "F16"],
      [["BF16", "BF16", "BF16"], "BF16"],
      [["F16", "BF16", "F32"], "F16"],
      [["F16", "F16", "F16", "F16"], "BF16"],
      [["F32", "F32"], "F32"],
    ];
    const special = [0, -0, 1, -1, 0.5, 2, -3, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (let trial = 0; trial < 20; trial++) {
      const [dtypes, outDtype] = cases[trial % cases.length]!;
      const n = 300 + ((trial * 977) % 1700);
      const encoded = dtypes.map((dtype, i) => ({ bytes: encodeFromF32(trial % 4 === 3 ? randomChoices(n, trial * 13 + i + 1, special) : Float32Array.from(randomArray(n, trial * 13 + i + 1)), dtype), dtype }));
      const weights = [0, ...dtypes.slice(1).map((_, i) => [0.6, 0.4, -0.3, 1][(trial + i) % 4]!)];
      const params = { drop_rate: [0.5, 0.1, 0.9, 0][trial % 4]!, lambda: trial % 3 ? 1 : 0.8, ties: trial % 2 === 1 };
      const options = { weights, chunk: [n, 128, 333, 1000][trial % 4]!, seed: trial };
      const expected = encodeFromF32(await runMethodChunked(dare, reference, encoded.map(({ bytes, dtype }) => decodeToF32(bytes, dtype)), params, options), outDtype);
      const actual = await runMethodChunkedEncoded(dare, pooled, encoded, outDtype, params, options);
      expect(firstEncodedDifference(actual, expected, outDtype), `trial ${trial}: n ${n}, ${dtypes.join(" ")} → ${outDtype}, ${JSON.stringify(params)}, chunk ${options.chunk}`).toBe(-1);
    }
  });

  it("draws the seeded stream's specification on the threads: p = 0.5 drops exactly where the stream is below 0.5", async () => {
    const n = 5000;
    const base = new Array<number>(n).fill(0);
    const ones = new Array<number>(n).fill(1);
    const out = await runMethodChunked(dare, pooled, [Float32Array.from(base), Float32Array.from(ones)], { drop_rate: 0.5 }, { weights: [0, 1], chunk: 1200, seed: 9 });
    const stream = randomForKey(9, "model.diffusion_model.input_blocks.1.0.weight", 1);
    expect(Array.from(out)).toEqual(ones.map(() => (stream() < 0.5 ? 0 : 2)));
  });
});
