import { createCpuKernelBackend, decodeToF32, encodeFromF32, type DType } from "@stmerge/core-tensors";
import { firstEncodedDifference } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { randomArray, randomChoices, runMethod, runMethodChunked, runMethodChunkedEncoded, withoutMethodKernels, f32Bits } from "../../test/run-method.js";
import { consensus } from "./consensus.js";

// Values checked by running the Python tool (its consensus merge run on these columns).
describe("consensus", () => {
  it("reproduces the Python tool's weights, through the method the merge runs", async () => {
    // One element per model: the result is Σ wᵢ·vᵢ with the weights the Python tool gives.
    expect(await runMethod(consensus, [[1], [2], [3]], { exponent: 4 }, { shape: [] })).toEqual([2]);
    const values = [1, 1.1, 1.05, 5];
    const pythonWeights = [0.322, 0.339, 0.339, 0];
    const [merged] = await runMethod(consensus, values.map((v) => [v]), { exponent: 4 }, { shape: [] });
    expect(merged).toBeCloseTo(pythonWeights.reduce((s, w, i) => s + w * values[i]!, 0), 2);
    const [flat] = await runMethod(consensus, [[1], [1], [1], [1.3]], { exponent: 4 }, { shape: [] });
    expect(flat).toBeCloseTo(1, 6);
  });

  it("merges per element, including scalars and 0-d tensors", async () => {
    const out = await runMethod(consensus, [[1, 1, 1], [2, 1.1, 1], [3, 5, 1.3]], {}, { shape: [3] });
    expect(out[0]).toBeCloseTo(2, 6);
    expect(out[2]).toBeCloseTo(1, 6);
    const scalar = await runMethod(consensus, [[1], [1.1], [1.05], [5]], { exponent: 4 }, { shape: [] });
    expect(scalar[0]).toBeCloseTo(1.0509, 3);
    expect(await runMethod(consensus, [[1], [1.1], [5], [5.1]], { exponent: 2 }, { shape: [] })).toEqual([Math.fround(3.05)]);
  });

  it("is an exact average for two models and ignores user weights", async () => {
    expect(await runMethod(consensus, [[1, 4], [3, 8]], {}, { weights: [0.9, 0.1] })).toEqual([2, 6]);
  });

  it("returns a single model unchanged", async () => {
    expect(await runMethod(consensus, [[1.5, -2, -0]])).toEqual([1.5, -2, -0]);
  });

  it("gives the farthest value weight exactly 0, however large it is", async () => {
    // Written as the Python tool writes it, 1 − (s − min)·(1 / (max − min)), the outlier's weight
    // is 2^-53 here, not 0: with E = 1 that would add 3.4e30 · 1.1e-16 ≈ 3.7e14 to the result.
    const outlier = Math.fround(3.368255321411307e30);
    const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
    for (const kernels of [reference, createCpuKernelBackend({ workers: 0 })]) {
      const merged = await runMethodChunked(consensus, kernels, [[1], [1.2724609375], [outlier]].map((x) => Float32Array.from(x)), { exponent: 1 }, { weights: [1, 1, 1], chunk: 1 });
      expect(Array.from(merged)).toEqual([(1 + 1.2724609375) / 2]);
    }
  });

  it("refuses an exponent that is negative, fractional or above 2^31 − 1", () => {
    for (const exponent of [-1, 1.5, 2 ** 31]) expect(consensus.params.safeParse({ exponent }).success, String(exponent)).toBe(false);
  });
});

// simd true runs the WebAssembly kernel (its three-input path and the general one); false the JavaScript kernel.
describe.each([true, false])("consensus on the kernel threads (simd %s)", (simd) => {
  const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 64, simd });
  afterAll(() => pooled.close());

  it("gives the same bits as the reference loop on this thread", async () => {
    const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
    for (let trial = 0; trial < 12; trial++) {
      const n = 300 + trial * 211;
      const inputs = Array.from({ length: 1 + (trial % 5) }, (_, i) => randomChoices(n, trial * 17 + i + 1, [0, 1, -1, 0.5, 1.1, 3, -2.5, 1e-12, 7, 3.4e30]));
      const params = { exponent: trial % 6 };
      const options = { weights: inputs.map(() => 1), chunk: [n, 256, 1000][trial % 3]! };
      expect(f32Bits(await runMethodChunked(consensus, pooled, inputs, params, options)), `trial ${trial}`).toEqual(f32Bits(await runMethodChunked(consensus, reference, inputs, params, options)));
    }
  });

  it("merges encoded inputs in one pass (F16, BF16, F32 and mixes) with the bytes of decode + the reference loop + encode", async () => {
    const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
    const cases: [DType[], DType][] = [
      [["F16", "F16", "F16"], "F16"],
      [["BF16", "BF16", "BF16"], "BF16"],
      [["F16", "BF16", "F32"], "F16"],
      [["F16", "F16", "F16", "F16"], "BF16"],
      [["F32", "F16"], "F32"],
    ];
    const special = [0, -0, 1, -1, 0.5, 2, -3, 3.4e30, Number.NaN, Number.POSITIVE_INFINITY];
    for (let trial = 0; trial < 15; trial++) {
      const [dtypes, outDtype] = cases[trial % cases.length]!;
      const n = 300 + ((trial * 977) % 1700);
      const encoded = dtypes.map((dtype, i) => ({ bytes: encodeFromF32(trial % 3 === 2 ? randomChoices(n, trial * 13 + i + 1, special) : Float32Array.from(randomArray(n, trial * 13 + i + 1)), dtype), dtype }));
      const params = { exponent: [4, 1, 3][trial % 3]! };
      const options = { weights: dtypes.map(() => 1), chunk: [n, 128, 333][trial % 3]! };
      const expected = encodeFromF32(await runMethodChunked(consensus, reference, encoded.map(({ bytes, dtype }) => decodeToF32(bytes, dtype)), params, options), outDtype);
      const actual = await runMethodChunkedEncoded(consensus, pooled, encoded, outDtype, params, options);
      expect(firstEncodedDifference(actual, expected, outDtype), `trial ${trial}: ${dtypes.join(" ")} → ${outDtype}`).toBe(-1);
    }
  });

  it("gives the reference's values with NaN, ±Inf and −0 among the inputs (any NaN matches any NaN)", async () => {
    const reference = withoutMethodKernels(createCpuKernelBackend({ workers: 0 }));
    const choices = [0, -0, 1, -1, 0.5, 3, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (let trial = 0; trial < 6; trial++) {
      const n = 257 + trial * 173;
      const inputs = Array.from({ length: 2 + (trial % 3) }, (_, i) => randomChoices(n, trial * 23 + i + 5, choices));
      const options = { weights: inputs.map(() => 1), chunk: [n, 100][trial % 2]! };
      const expected = Array.from(await runMethodChunked(consensus, reference, inputs, { exponent: 2 }, options));
      // toEqual tells −0 from +0 and counts NaN equal to NaN (which NaN bits an engine makes is not fixed).
      expect(Array.from(await runMethodChunked(consensus, pooled, inputs, { exponent: 2 }, options)), `trial ${trial}`).toEqual(expected);
      expect(expected.some(Number.isNaN) && expected.some((v) => Number.isFinite(v))).toBe(true);
    }
  });
});
