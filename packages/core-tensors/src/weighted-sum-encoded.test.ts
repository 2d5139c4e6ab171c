import { describe, expect, it } from "vitest";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import type { DType } from "./dtypes.js";
import { encodeFromF32 } from "./float-codecs.js";

// The fused op must give exactly what decode + weightedSum + encode give.
describe("weightedSumEncoded", () => {
  const n = 300_001; // above the inline threshold, not a multiple of the block or worker split
  // Every 11th element is -0 in every input: the sign of a zero sum must match too.
  const values = (seed: number) => Float32Array.from({ length: n }, (_, i) => (i % 11 === 0 ? -0 : Math.sin(i * 0.37 + seed) * (i % 7 === 0 ? 1e4 : 0.05)));

  it.each([
    [["F16", "F16", "F16"], "F16", [0.5, 0.3, 0.2]],
    [["F16", "BF16"], "F16", [0.6, 0.4]],
    [["F16", "F16"], "F16", [0.6, 0.4]],
    [["F16"], "F16", [-2]],
    [["F16", "F16", "F16", "F16", "F16", "F16"], "F16", [0.25, 0.15, 0.1, 0.25, 0.15, 0.1]],
    [["F32"], "BF16", [1.5]],
    [["BF16", "F32", "F16", "F16"], "F32", [0.1, 0.2, 0.3, 0.4]],
  ] as [DType[], DType, number[]][])("%j → %s matches the unfused ops", async (dtypes, outDtype, weights) => {
    for (const workers of [0, 2]) {
      const k = createCpuKernelBackend({ workers });
      try {
        const inputs = dtypes.map((dtype, i) => {
          const bytes = k.allocBytes(n * (dtype === "F32" ? 4 : 2));
          bytes.set(encodeFromF32(values(i), dtype));
          return { bytes, dtype };
        });
        const decoded = await Promise.all(inputs.map((x) => k.decode(x.bytes, x.dtype, k.allocF32(n))));
        const expected = await k.encode(await k.weightedSum(decoded, weights, k.allocF32(n)), outDtype);
        const fused = await k.weightedSumEncoded!(inputs, weights, outDtype, k.allocBytes(expected.byteLength));
        expect(Buffer.from(fused).equals(Buffer.from(expected))).toBe(true);
      } finally {
        await k.close();
      }
    }
  });

  it("rejects mismatched lengths and non-float outputs", async () => {
    const k = createCpuKernelBackend({ workers: 0 });
    await expect(k.weightedSumEncoded!([{ bytes: new Uint8Array(4), dtype: "F16" }, { bytes: new Uint8Array(6), dtype: "F16" }], [1, 1], "F16")).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
    await expect(k.weightedSumEncoded!([{ bytes: new Uint8Array(4), dtype: "F16" }], [1], "I32")).rejects.toMatchObject({ code: "DTYPE_NOT_ENCODABLE" });
    await k.close();
  });
});
