import * as tfCore from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import type { KernelBackend } from "./kernel-backend.js";
import { randomValues } from "../test/random-values.js";
import { createTfjsKernelBackend, type TfNamespace } from "./tfjs-kernel-backend.js";

/** Largest difference relative to max(1, |expected|): inputs are O(1), so this is a few F32 ulps. */
function maxRelativeError(actual: Float32Array, expected: Float32Array): number {
  expect(actual.length).toBe(expected.length);
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const e = expected[i]!;
    const err = Math.abs(actual[i]! - e) / Math.max(1, Math.abs(e));
    if (!(err <= worst)) worst = err; // NaN propagates as a failure
  }
  return worst;
}

// The adapter runs against tfjs-core's CPU backend here: the same code drives tfjs-node-gpu.
let tfjs: KernelBackend;
const cpu = createCpuKernelBackend({ workers: 0 });
beforeAll(async () => {
  tfCore.env().set("PROD", true); // silences tfjs's console banner
  await tfCore.setBackend("cpu");
  tfjs = createTfjsKernelBackend(tfCore as unknown as TfNamespace, { workers: 0 });
});
afterAll(async () => {
  await tfjs.close();
  await cpu.close();
});

const N = 4099;
const a = randomValues(N, 11, 3);
const b = randomValues(N, 12, 3);
const c = randomValues(N, 13, 3);
const TOL = 1e-6;

describe("TensorFlow.js kernel backend (tfjs-core CPU) agrees with the CPU kernels", () => {
  it("describes itself", () => {
    expect(tfjs.kind).toBe("tfjs");
    expect(tfjs.description).toBe("tfjs (cpu backend)");
  });

  it("elementwise ops", async () => {
    const pairs: [string, Float32Array, Float32Array][] = [
      ["weightedSum", await tfjs.weightedSum([a, b, c], [0.5, 0.3, 0.2]), await cpu.weightedSum([a, b, c], [0.5, 0.3, 0.2])],
      ["scale", await tfjs.scale(a, 0.7), await cpu.scale(a, 0.7)],
      ["add", await tfjs.add(a, b), await cpu.add(a, b)],
      ["sub", await tfjs.sub(a, b), await cpu.sub(a, b)],
      ["lerp", await tfjs.lerp(a, b, 0.3), await cpu.lerp(a, b, 0.3)],
      ["abs", await tfjs.abs(a), await cpu.abs(a)],
      ["sign", await tfjs.sign(a), await cpu.sign(a)],
      ["clamp", await tfjs.clamp(a, -1, 0.5), await cpu.clamp(a, -1, 0.5)],
    ];
    for (const [name, actual, expected] of pairs) expect(maxRelativeError(actual, expected), name).toBeLessThan(TOL);
  });

  it("writes into out", async () => {
    const out = new Float32Array(N);
    expect(await tfjs.add(a, b, out)).toBe(out);
    expect(out[1]).toBeCloseTo(a[1]! + b[1]!, 5);
  });

  it("reductions", async () => {
    expect(await tfjs.dot(a, b)).toBeCloseTo(await cpu.dot(a, b), 2);
    expect(await tfjs.norm(a)).toBeCloseTo(await cpu.norm(a), 3);
    expect(await tfjs.norm(new Float32Array(0))).toBe(0);
  });

  it("topKThreshold", async () => {
    for (const k of [1, 17, 1000, N - 1]) expect(await tfjs.topKThreshold(a, k), `k=${k}`).toBe(await cpu.topKThreshold(a, k));
    expect(await tfjs.topKThreshold(a, 0)).toBe(Infinity);
    expect(await tfjs.topKThreshold(a, N)).toBe(0);
  });

  it("decode/encode go through the CPU codecs (tfjs has no F16/BF16/F8)", async () => {
    const bytes = await tfjs.encode(a, "BF16");
    expect(Array.from(bytes)).toEqual(Array.from(await cpu.encode(a, "BF16")));
    expect(Array.from(await tfjs.decode(bytes, "BF16"))).toEqual(Array.from(await cpu.decode(bytes, "BF16")));
  });

  it("typed errors for bad arguments", async () => {
    await expect(tfjs.add(a, b.subarray(2))).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
    await expect(tfjs.weightedSum([a], [1, 2])).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
    await expect(tfjs.weightedSum([], [])).rejects.toMatchObject({ code: "KERNEL_NO_INPUTS" });
  });
});
