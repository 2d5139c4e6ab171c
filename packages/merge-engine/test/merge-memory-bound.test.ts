import { execFileSync } from "node:child_process";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { bundleEntry, TINY_SD1, tempDir, seededValues } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeFromF32, shapeElementCount, writeSafetensors } from "@stmerge/core-tensors";

const dir = tempDir("stmerge-memory-bound-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Two 32 MB F16 tensors per model: a merge that held whole tensors (or whole models) in F32
// would need hundreds of MB more than the 8 MiB budget allows, so this bound can fail.
const BIG = ["model.diffusion_model.input_blocks.1.1.proj_in.weight", "model.diffusion_model.output_blocks.3.1.proj_out.weight"];
const SIDE = 4096;

/** A tiny SD1 model plus two big F16 tensors filled with a cheap per-model pattern of finite values. */
async function writeBigModel(path: string, seed: number): Promise<void> {
  const small = TINY_SD1.filter((t) => (t.dtype ?? "F16") !== "I64").map((t, i) => ({
    name: t.name,
    dtype: t.dtype ?? ("F16" as const),
    shape: t.shape,
    data: encodeFromF32(seededValues(shapeElementCount(t.shape), seed * 100 + i), t.dtype ?? "F16"),
  }));
  const big = BIG.map((name, t) => {
    const halves = new Uint16Array(SIDE * SIDE);
    // Exponents 0x30..0x3b (about 0.125..1), mantissa and sign from the index: finite, varied.
    for (let i = 0; i < halves.length; i++) halves[i] = (((i * 31 + seed * 7 + t) & 0x3ff) | ((0x30 + (i % 12)) << 10) | (i & 1 ? 0x8000 : 0)) & 0xffff;
    return { name, dtype: "F16" as const, shape: [SIDE, SIDE], data: new Uint8Array(halves.buffer) };
  });
  await writeSafetensors(path, [...small, ...big], {});
}
const BUDGET = 8 * 1024 * 1024;
// Allocator, stream and header bookkeeping the plan does not model (about 12 MB measured here);
// holding any one input tensor whole in F32 (64 MB) would exceed it.
const SLACK = 32 * 1024 * 1024;

describe("merge memory bound (measured, not only estimated)", () => {
  beforeAll(async () => {
    for (const [i, model] of ["a", "b", "c"].entries()) await writeBigModel(join(dir, `${model}.safetensors`), i + 1);
  });
  // TIES gathers its per-tensor statistics in passes over chunks on the kernel threads: the same bound holds.
  it.each([
    ["weighted_sum", [0.5, 0.3, 0.2], {}],
    ["ties", [0, 0.6, 0.4], { merge_method: "ties", merge_params: { density: 0.3 } }],
  ] as const)("keeps the process's peak RSS within the planner's working-memory bound (%s)", async (name, weights, method) => {
    writeFileSync(
      join(dir, "m.json"),
      JSON.stringify({ models: ["a", "b", "c"].map((n, i) => ({ path: `${n}.safetensors`, weight: weights[i] })), ...method, output: { path: `out-${name}.safetensors` } }),
    );
    const child = await bundleEntry(join(import.meta.dirname, "merge-rss-child.ts"), { outDir: join(import.meta.dirname, "..", ".tmp"), name: "merge-rss-child" });
    try {
      const report = JSON.parse(execFileSync(process.execPath, [child, join(dir, "m.json"), String(BUDGET)], { encoding: "utf8" })) as {
        baselineRssBytes: number;
        peakRssBytes: number;
        estimatedPeakBytes: number;
        bytesWritten: number;
      };
      expect(report.bytesWritten).toBeGreaterThan(2 * SIDE * SIDE * 2);
      // The planner's bound honours the budget it was given...
      expect(report.estimatedPeakBytes).toBeLessThanOrEqual(4 * BUDGET);
      // ...and the process stays under it (above what it used before the merge started).
      expect(report.peakRssBytes - report.baselineRssBytes).toBeLessThanOrEqual(report.estimatedPeakBytes + SLACK);
    } finally {
      rmSync(child, { force: true });
    }
  });
});
