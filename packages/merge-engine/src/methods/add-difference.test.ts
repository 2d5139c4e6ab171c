import { createCpuKernelBackend, decodeToF32, encodeFromF32, type DType, type KernelBackend } from "@stmerge/core-tensors";
import { firstEncodedDifference } from "@stmerge/test-utils";
import { afterAll, describe, expect, it } from "vitest";
import { randomArray, randomChoices, runMethod, runMethodChunked, runMethodChunkedEncoded } from "../../test/run-method.js";
import { addDifference } from "./add-difference.js";
import { trainDifference } from "./train-difference.js";

describe("add_difference", () => {
  it("computes A + α(B − C)", async () => {
    const [a, b, c] = [randomArray(50, 1), randomArray(50, 2), randomArray(50, 3)];
    const out = await runMethod(addDifference, [a, b, c], { alpha: 0.7 });
    out.forEach((v, i) => expect(v).toBeCloseTo(a[i]! + 0.7 * (b[i]! - c[i]!), 5));
  });
  it("defaults α to 1 and rejects a non-number", () => {
    expect(addDifference.params.parse({})).toEqual({ alpha: 1 });
    expect(() => addDifference.params.parse({ alpha: "x" })).toThrow();
  });
});

describe("train_difference", () => {
  it("matches SuperMerger's formula element by element", async () => {
    const [a, b, c] = [randomArray(64, 4), randomArray(64, 5), randomArray(64, 6)];
    const out = await runMethod(trainDifference, [a, b, c], { alpha: 0.5 });
    out.forEach((v, i) => {
      const d = b[i]! - c[i]!;
      const ref = a[i]! + (0.5 * 1.8 * d * Math.abs(b[i]! - a[i]!)) / (Math.abs(b[i]! - a[i]!) + Math.abs(d));
      expect(v).toBeCloseTo(ref, 5);
    });
  });
  it("keeps A where A = B = C, and where B = C", async () => {
    expect(await runMethod(trainDifference, [[1, 2], [1, 5], [1, 5]])).toEqual([1, 2]);
  });
});

describe("add_difference and train_difference on encoded inputs", () => {
  const pooled = createCpuKernelBackend({ workers: 2 });
  afterAll(() => pooled.close());

  it.each([
    [addDifference, "addDifferenceEncoded"],
    [trainDifference, "trainDifferenceEncoded"],
  ] as const)("$0.name merges encoded inputs in one pass (F16, BF16, F32, F8 and mixes; NaN, ±Inf, −0, A = B = C) with the bytes of its merge + encode", async (method, op) => {
    const reference = createCpuKernelBackend({ workers: 0 });
    let fused = 0;
    const fusedOp = pooled[op]!.bind(pooled);
    const counted: KernelBackend = { ...pooled, [op]: ((a, b, c, scalar, outDtype, out) => (fused++, fusedOp(a, b, c, scalar, outDtype, out))) satisfies typeof fusedOp };
    const cases: [DType[], DType][] = [
      [["F16", "F16", "F16"], "F16"],
      [["BF16", "BF16", "BF16"], "BF16"],
      [["F16", "BF16", "F16"], "BF16"],
      [["F32", "F16", "F16"], "F16"],
      [["F16", "F16", "F16"], "F32"],
      [["F8_E4M3", "F16", "F16"], "F16"],
    ];
    const special = [0, -0, 1, -1, 0.5, 2, -3, 60000, 1e-7, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
    for (let trial = 0; trial < 12; trial++) {
      const [dtypes, outDtype] = cases[trial % cases.length]!;
      const n = 300 + ((trial * 977) % 1700);
      // Trials 3k + 1: A = B = C in every fourth column (train_difference's zero denominator).
      const values = dtypes.map((_, i) => (trial % 3 === 2 ? randomChoices(n, trial * 13 + i + 1, special) : Float32Array.from(randomArray(n, trial * 13 + i + 1))));
      if (trial % 3 === 1) for (let e = 0; e < n; e += 4) values[1]![e] = values[2]![e] = values[0]![e]!;
      const encoded = dtypes.map((dtype, i) => ({ bytes: encodeFromF32(values[i]!, dtype), dtype }));
      const params = { alpha: [0.7, -1.5, 1][trial % 3]! };
      const options = { weights: [1, 1, 1], chunk: [n, 128, 333][trial % 3]! };
      const expected = encodeFromF32(await runMethodChunked(method, reference, encoded.map(({ bytes, dtype }) => decodeToF32(bytes, dtype)), params, options), outDtype);
      const actual = await runMethodChunkedEncoded(method, counted, encoded, outDtype, params, options);
      expect(firstEncodedDifference(actual, expected, outDtype), `trial ${trial}: ${dtypes.join(" ")} → ${outDtype}`).toBe(-1);
    }
    expect(fused).toBeGreaterThan(0);
    await reference.close();
  });
});
