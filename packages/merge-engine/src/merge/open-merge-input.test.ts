import { copyFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { createCpuKernelBackend, decodeToF32, openSafetensors } from "@stmerge/core-tensors";
import { describe, expect, it } from "vitest";
import { tempDir } from "@stmerge/test-utils";
import { parseManifest } from "../manifest/load-manifest.js";
import { openMergeInput } from "./open-merge-input.js";
import { runMerge } from "./run-merge.js";

/** Real torch checkpoints written by tools/fixtures/torch_checkpoints.py (safe-pickle's fixtures). */
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../safe-pickle/test/fixtures");

describe("legacy checkpoints as merge inputs", () => {
  it("opens a Lightning .ckpt through safe-pickle with its state dict unwrapped", async () => {
    const s = await openMergeInput(join(FIXTURES, "sd_lightning.ckpt"));
    expect(s.descriptors.some((d) => d.name.startsWith("model.diffusion_model."))).toBe(true);
    expect(s.descriptors.some((d) => d.name.startsWith("state_dict.") || d.name.startsWith("optimizer"))).toBe(false);
    await s.close();
  });

  it("merges a .ckpt with itself into a safetensors file equal to its state dict (F32, 0.5 + 0.5)", async () => {
    const dir = tempDir();
    copyFileSync(join(FIXTURES, "sd_lightning.ckpt"), join(dir, "a.ckpt"));
    copyFileSync(join(FIXTURES, "sd_lightning_legacy.ckpt"), join(dir, "b.ckpt"));
    const manifest = parseManifest(JSON.stringify({ models: [{ path: "a.ckpt", weight: 0.5 }, { path: "b.ckpt", weight: 0.5 }], output: "out.safetensors", prune: false }), join(dir, "m.json"));
    const kernels = createCpuKernelBackend({ workers: 0 });
    const r = await runMerge(manifest, { kernels });
    await kernels.close();
    const [src, out] = await Promise.all([openMergeInput(join(dir, "a.ckpt")), openSafetensors(r.outputPath)]);
    const key = src.descriptors.find((d) => d.name.startsWith("model.diffusion_model.") && d.dtype === "F32")!.name;
    expect(Array.from(decodeToF32(await out.read(key), "F32"))).toEqual(Array.from(decodeToF32(await src.read(key), "F32")));
    await Promise.all([src.close(), out.close()]);
  });
});
