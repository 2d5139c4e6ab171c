import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCpuKernelBackend, decodeToF32, encodeFromF32, openSafetensors, writeSafetensors } from "@stmerge/core-tensors";
import { createMethodRegistry, loadMergeMethodPlugin, parseManifest, randomForKey, runMerge } from "@stmerge/merge-engine";
import { describe, expect, it } from "vitest";
import { median } from "./median.js";

const kernels = createCpuKernelBackend({ workers: 0 });
const run = (inputs: number[][]) =>
  median.merge(
    { kernels, key: "k", block: "BASE", shape: [inputs[0]!.length], offset: 0, weights: inputs.map(() => 1), random: (i) => randomForKey(0, "k", i), out: new Float32Array(inputs[0]!.length) },
    inputs.map((x) => Float32Array.from(x)),
    {},
  );

describe("median plugin", () => {
  it("takes the per-element median, averaging the middle pair for even counts", async () => {
    expect(Array.from(await run([[1, 10], [5, -2], [3, 0]]))).toEqual([3, 0]);
    expect(Array.from(await run([[1], [2], [10], [4]]))).toEqual([3]);
  });

  it("is a valid plugin the registry accepts, loaded from this package's entry", async () => {
    const methods = await loadMergeMethodPlugin(fileURLToPath(new URL("./index.ts", import.meta.url)), "/");
    expect(methods.map((m) => m.name)).toEqual(["median"]);
    const registry = createMethodRegistry();
    registry.register(methods[0]!);
    expect(registry.get("median")).toBe(median);
  });

  /** Three tiny SD1 checkpoints (real key names, small shapes) in a fresh folder. */
  async function tinyModels(values: number[][]): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "stmerge-plugin-"));
    for (const [i, v] of values.entries()) {
      await writeSafetensors(join(dir, `m${i}.safetensors`), [
        { name: "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", dtype: "F16", shape: [1, 768], data: encodeFromF32(new Float32Array(768).fill(i), "F16") },
        { name: "model.diffusion_model.out.2.bias", dtype: "F16", shape: [4], data: encodeFromF32(Float32Array.from(v), "F16") },
      ]);
    }
    return dir;
  }
  const plugin = fileURLToPath(new URL("./index.ts", import.meta.url));

  it("merges real files when the user loads it (--plugin)", async () => {
    const values = [[1, 2, 3, 4], [9, 9, 9, 9], [2, 3, 4, 5]];
    const dir = await tinyModels(values);
    const manifest = { models: values.map((_, i) => ({ path: `m${i}.safetensors`, weight: 1 })), merge_method: "median", output: "out.safetensors" };
    writeFileSync(join(dir, "m.json"), JSON.stringify(manifest));
    const r = await runMerge(parseManifest(JSON.stringify(manifest), join(dir, "m.json")), { kernels, plugins: [plugin] });
    const s = await openSafetensors(r.outputPath);
    expect(Array.from(decodeToF32(await s.read("model.diffusion_model.out.2.bias"), "F16"))).toEqual([2, 3, 4, 5]);
    expect(JSON.parse(s.metadata.sd_merge_recipe!).algorithm).toBe("median");
    await s.close();
  });

  it("is never loaded because a manifest names it: the merge says which --plugin would load it", async () => {
    const dir = await tinyModels([[1, 1, 1, 1], [2, 2, 2, 2], [3, 3, 3, 3]]);
    const manifest = { models: [0, 1, 2].map((i) => ({ path: `m${i}.safetensors`, weight: 1 })), merge_method: "median", plugins: [plugin], output: "out.safetensors" };
    writeFileSync(join(dir, "m.json"), JSON.stringify(manifest));
    await expect(runMerge(parseManifest(JSON.stringify(manifest), join(dir, "m.json")), { kernels })).rejects.toMatchObject({ message: expect.stringContaining("--plugin") });
    expect(existsSync(join(dir, "out.safetensors"))).toBe(false);
  });
});
