import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, createSafetensorsWriter, decodeToF32, dtypeSize, openSafetensors, shapeElementCount, writeSafetensors, type InMemoryTensor } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir, TINY_SD1 } from "@stmerge/test-utils";
import { createMethodRegistry } from "../methods/method-registry.js";
import { buildMergePlan } from "./build-merge-plan.js";
import { executeMergePlan } from "./execute-merge-plan.js";

/** A1111's run_modelmerger first-conv results in PyTorch, by tools/fixtures/a1111_inpaint_merge.py. */
interface Case {
  name: string;
  method: string;
  multiplier: number;
  scale: number;
  shapes: number[][];
  inputs: number[][];
  expected: number[];
}
const fixture = JSON.parse(readFileSync(new URL("../../test/fixtures/a1111-inpaint-merge.json", import.meta.url), "utf8")) as { cases: Case[] };
const CONV_IN = "model.diffusion_model.input_blocks.0.0.weight";
const registry = createMethodRegistry();
const kernels = createCpuKernelBackend({ workers: 0 });
const dirs: string[] = [];
afterAll(async () => {
  await kernels.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A tiny SD1 file (zeros) whose first conv has `shape` and `values` (F32). */
async function writeModel(path: string, shape: number[], values: readonly number[]): Promise<string> {
  const tensors: InMemoryTensor[] = TINY_SD1.map((t) =>
    t.name === CONV_IN ? { name: t.name, dtype: "F32", shape, data: new Uint8Array(Float32Array.from(values).buffer) } : { name: t.name, dtype: t.dtype ?? "F16", shape: t.shape, data: new Uint8Array(shapeElementCount(t.shape) * dtypeSize(t.dtype ?? "F16")) },
  );
  await writeSafetensors(path, tensors, {});
  return path;
}

async function open(c: Case, order = [0, 1, 2]) {
  const dir = tempDir();
  dirs.push(dir);
  const paths = await Promise.all(order.map((k) => writeModel(join(dir, `m${k}.safetensors`), c.shapes[k]!, c.inputs[k]!.map((v) => v * c.scale))));
  const sources = await Promise.all(paths.map((p) => openSafetensors(p)));
  const weights = c.method === "weighted_sum" ? [1 - c.multiplier, c.multiplier, 0] : [1, 1, 1];
  const n = c.method === "weighted_sum" ? 2 : 3;
  const inputs = sources.slice(0, n).map((s, i) => ({ name: `m${order[i]}`, path: s.path, descriptors: s.descriptors, metadata: s.metadata, weight: weights[i]! }));
  return { dir, sources: sources.slice(0, n), inputs, close: () => Promise.all(sources.map((s) => s.close())) };
}

describe("inpainting and instruct-pix2pix recipes, against A1111's formulas", () => {
  it.each(fixture.cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const { dir, sources, inputs, close } = await open(c);
    try {
      const method = registry.get(c.method);
      const plan = buildMergePlan(inputs, { method, params: c.method === "add_difference" ? { alpha: c.multiplier } : {} });
      const entry = plan.entries.find((e) => e.key === CONV_IN)!;
      const total = c.shapes[0]![1]!;
      expect(entry).toMatchObject({ action: "merge", shape: c.shapes[0], channels: { merged: 4, total } });
      expect(entry.note).toContain(`input channels 0–3 merged, 4–${total - 1} kept from m0`);
      const out = join(dir, "out.safetensors");
      await executeMergePlan(plan, { sources, sink: createSafetensorsWriter(out), kernels, method });
      const merged = await openSafetensors(out);
      try {
        expect(merged.get(CONV_IN)?.shape).toEqual(c.shapes[0]);
        const got = Array.from(decodeToF32(await merged.read(CONV_IN), "F32"));
        const bad = got.findIndex((v, i) => !(Math.abs(v - c.expected[i]!) <= 1e-6 * (1 + Math.abs(c.expected[i]!))));
        expect(bad, bad < 0 ? "" : `element ${bad}: ${got[bad]} vs ${c.expected[bad]}`).toBe(-1);
      } finally {
        await merged.close();
      }
    } finally {
      await close();
    }
  });

  it("refuses the inpainting model in second place, saying to list it first", async () => {
    const c = fixture.cases[0]!;
    const { inputs, close } = await open(c, [1, 0, 2]);
    try {
      expect(() => buildMergePlan(inputs, { method: registry.get("add_difference") })).toThrow(expect.objectContaining({ code: "MERGE_SHAPE_MISMATCH", message: expect.stringContaining("is an inpainting model (9 input channels) but is not model 0") }));
    } finally {
      await close();
    }
  });
});
