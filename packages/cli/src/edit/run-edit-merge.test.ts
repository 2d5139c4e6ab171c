import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeToF32, encodeFromF32, openSafetensors, writeSafetensors } from "@stmerge/core-tensors";
import { createMethodRegistry } from "@stmerge/merge-engine";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runEditMerge } from "./run-edit-merge.js";

const LAYOUT: [string, number[]][] = [
  ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [8]],
  ["model.diffusion_model.input_blocks.0.0.weight", [4, 4, 3, 3]],
  ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [2, 768]],
  ["model.diffusion_model.out.2.bias", [4]],
];

let dir: string;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-edit-merge-"));
  for (const [name, seed] of [["a", 1], ["b", 2], ["c", 3]] as const) {
    await writeSafetensors(join(dir, `${name}.safetensors`), LAYOUT.map(([key, shape], i) => ({ name: key, dtype: "F32" as const, shape, data: encodeFromF32(Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, k) => Math.sin(seed * 10 + i + k)), "F32") })));
  }
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");
const options = (signal: AbortSignal) => ({ overwrite: false, registry: createMethodRegistry(), plugins: [], pluginDir: dir, cwd: dir, toolVersion: "0.0.0-test", signal, onProgress: () => {} });

describe("runEditMerge", () => {
  it("merges the saved manifest, leaving an excluded model out of the tensors, the recipe and the ancestry", async () => {
    const manifest = join(dir, "m.json");
    writeFileSync(manifest, JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.25, index: 0 }, { path: "b.safetensors", weight: 0.5, index: 1, excluded: true }, { path: "c.safetensors", weight: 0.75, index: 2 }], output: "out.safetensors" }));
    const r = await runEditMerge(manifest, options(new AbortController().signal));
    expect(r.output).toBe(join(dir, "out.safetensors"));
    expect(r.sha256).toBe(sha(r.output));
    expect(r.bytes).toBe(readFileSync(r.output).length);
    const out = await openSafetensors(r.output);
    const [a, c] = [await openSafetensors(join(dir, "a.safetensors")), await openSafetensors(join(dir, "c.safetensors"))];
    try {
      // 0.25·a + 0.75·c, element by element (F32 in and out: the sum rounds once, to float32).
      const key = "model.diffusion_model.out.2.bias";
      const f32 = async (s: typeof out) => decodeToF32(await s.read(key), "F32");
      const [x, y, z] = [await f32(a), await f32(c), await f32(out)];
      expect(Array.from(z)).toEqual(Array.from(x, (v, k) => Math.fround(0.25 * v + 0.75 * y[k]!)));
      const recipe = JSON.parse(out.metadata.stmerge_manifest!) as { models: { path: string; index: number }[] };
      expect(recipe.models.map((m) => [m.path, m.index])).toEqual([["a.safetensors", 0], ["c.safetensors", 1]]);
      expect(Object.keys(JSON.parse(out.metadata.sd_merge_models!) as object).sort()).toEqual([sha(join(dir, "a.safetensors")), sha(join(dir, "c.safetensors"))].sort());
    } finally {
      await Promise.all([out.close(), a.close(), c.close()]);
    }
  });

  it("a manifest device it cannot use is the merge command's one-line error naming the manifest", async () => {
    const manifest = join(dir, "device.json");
    writeFileSync(manifest, JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.5 }, { path: "c.safetensors", weight: 0.5 }], device: "tpu", output: "device.safetensors" }));
    await expect(runEditMerge(manifest, options(new AbortController().signal))).rejects.toMatchObject({ code: "MANIFEST_INVALID", file: manifest, message: `${manifest}: device: "tpu" is not auto, cpu, gpu or cuda` });
    expect(readdirSync(dir).filter((n) => n.includes("device.safetensors"))).toEqual([]);
  });

  it("an aborted signal stops it with no output and no temp file", async () => {
    const manifest = join(dir, "abort.json");
    writeFileSync(manifest, JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.5 }, { path: "c.safetensors", weight: 0.5 }], output: "aborted.safetensors" }));
    const controller = new AbortController();
    controller.abort();
    await expect(runEditMerge(manifest, options(controller.signal))).rejects.toMatchObject({ code: "MERGE_ABORTED" });
    expect(readdirSync(dir).filter((n) => n.includes("aborted.safetensors"))).toEqual([]);
  });
});
