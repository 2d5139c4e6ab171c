import { createCpuKernelBackend } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { randomArray, runMethod, runMethodChunked, withoutMethodKernels, f32Bits } from "../../test/run-method.js";
import { slerp } from "./slerp.js";

describe("slerp", () => {
  it("rotates between orthogonal unit vectors along the circle", async () => {
    const out = await runMethod(slerp, [[1, 0], [0, 1]], { t: 0.5 });
    expect(out[0]).toBeCloseTo(Math.SQRT1_2, 6);
    expect(out[1]).toBeCloseTo(Math.SQRT1_2, 6);
    const third = await runMethod(slerp, [[1, 0], [0, 1]], { t: 1 / 3 });
    expect(third[0]).toBeCloseTo(Math.cos(Math.PI / 6), 6);
    expect(third[1]).toBeCloseTo(Math.sin(Math.PI / 6), 6);
  });

  it("matches the textbook formula on random tensors", async () => {
    const a = randomArray(30, 1);
    const b = randomArray(30, 2);
    const t = 0.3;
    const out = await runMethod(slerp, [a, b], { t });
    const dot = a.reduce((s, x, i) => s + x * b[i]!, 0);
    const na = Math.hypot(...a);
    const nb = Math.hypot(...b);
    const th = Math.acos(dot / (na * nb));
    out.forEach((v, i) => expect(v).toBeCloseTo((a[i]! * Math.sin((1 - t) * th) + b[i]! * Math.sin(t * th)) / Math.sin(th), 5));
  });

  it("falls back to lerp when parallel or zero", async () => {
    expect(await runMethod(slerp, [[1, 2], [2, 4]], { t: 0.5 })).toEqual([1.5, 3]);
    expect(await runMethod(slerp, [[0, 0], [2, 4]], { t: 0.25 })).toEqual([0.5, 1]);
    expect(await runMethod(slerp, [[3], [5]], { t: 0.5 })).toEqual([4]);
  });
});

describe("slerp on the kernel threads", () => {
  const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 64 });
  afterAll(() => pooled.close());

  it("gathers its dot product and norms in one read, with the same bits as three dot products", async () => {
    const reference = withoutMethodKernels(pooled);
    for (let trial = 0; trial < 8; trial++) {
      const n = 500 + trial * 301;
      const inputs = [Float32Array.from(randomArray(n, trial + 1)), Float32Array.from(randomArray(n, trial + 50))];
      const options = { weights: [1, 1], chunk: [n, 200, 777][trial % 3]! };
      const params = { t: [0.4, 0.1, 0.9][trial % 3]! };
      expect(f32Bits(await runMethodChunked(slerp, pooled, inputs, params, options)), `trial ${trial}`).toEqual(f32Bits(await runMethodChunked(slerp, reference, inputs, params, options)));
    }
  });
});
