import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { createCpuKernelBackend, decodeToF32, openSafetensors } from "@stmerge/core-tensors";
import { layoutDescriptors } from "../../test/load-layout.js";
import { tempDir } from "@stmerge/test-utils";
import { bakeLoras } from "./bake-lora.js";
import { extractLora, extractTargets } from "./extract-lora.js";
import { loadLora } from "./load-lora.js";

// sd1-tuned = sd1-tiny + known low-rank deltas; torch's optimal rank-4 errors: tools/fixtures/lora_fixtures.py.
const FIXTURES = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
const spec = (JSON.parse(readFileSync(fixture("cases.json"), "utf8")) as { extract: { tuned: string; base: string; rank: number; convRank: number; relativeErrors: Record<string, number> } }).extract;
const dir = tempDir("stmerge-lora-extract-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("extractLora", () => {
  it("reports per module torch's optimal (Eckart–Young) rank-r error, and bake(base, extracted) reproduces tuned within it", async () => {
    const outputPath = join(dir, "extracted.safetensors");
    const r = await extractLora(fixture(spec.tuned), fixture(spec.base), { outputPath, rank: spec.rank, convRank: spec.convRank, precision: "fp32" });
    expect(Object.keys(Object.fromEntries(r.modules.map((m) => [m.name, 0]))).sort()).toEqual(Object.keys(spec.relativeErrors).sort());
    for (const m of r.modules) {
      const want = spec.relativeErrors[m.name]!;
      if (want > 1e-3) expect(m.relativeError).toBeCloseTo(want, 6);
      else expect(m.relativeError).toBeLessThan(1e-4);
    }
    expect(r.unchanged).toBeGreaterThan(0);

    const lora = await loadLora(outputPath);
    expect(lora.modules.every((m) => m.format === "lora")).toBe(true);
    const baked = join(dir, "baked.safetensors");
    const bake = await bakeLoras(fixture(spec.base), [{ lora, strength: 1 }], { outputPath: baked });
    expect(bake.unplaced).toEqual([]);
    const [ours, tuned, base] = await Promise.all([openSafetensors(baked), openSafetensors(fixture(spec.tuned)), openSafetensors(fixture(spec.base))]);
    try {
      for (const d of tuned.descriptors.filter((x) => x.dtype === "F32")) {
        const [o, t, b] = await Promise.all([ours, tuned, base].map(async (s) => decodeToF32(await s.read(d.name), d.dtype)));
        let err = 0;
        let norm = 0;
        for (let i = 0; i < t!.length; i++) {
          err += (o![i]! - t![i]!) ** 2;
          norm += (t![i]! - b![i]!) ** 2;
        }
        if (norm === 0) expect(err, d.name).toBe(0);
        else expect(Math.sqrt(err / norm), d.name).toBeLessThan(Math.max(...Object.values(spec.relativeErrors).filter((e) => e > 1e-3)) * 1.001 + 1e-4);
      }
    } finally {
      await Promise.all([ours.close(), tuned.close(), base.close()]);
    }
  });

  it("writes the same bytes with the SVDs on two kernel workers (several modules in flight) as on the calling thread", async () => {
    const inline = join(dir, "inline.safetensors");
    const onWorkers = join(dir, "workers.safetensors");
    const r1 = await extractLora(fixture(spec.tuned), fixture(spec.base), { outputPath: inline, rank: spec.rank, convRank: spec.convRank, precision: "fp32" });
    // A pool of 2: every module's ΔW (in a SharedArrayBuffer) goes to a worker, two at a time.
    const kernels = createCpuKernelBackend({ workers: 2 });
    try {
      const r2 = await extractLora(fixture(spec.tuned), fixture(spec.base), { outputPath: onWorkers, rank: spec.rank, convRank: spec.convRank, precision: "fp32", kernels });
      expect(r2.modules).toEqual(r1.modules);
      expect(r2.unchanged).toBe(r1.unchanged);
    } finally {
      await kernels.close();
    }
    expect(readFileSync(onWorkers).equals(readFileSync(inline))).toBe(true);
  });

  it("targets every kohya module of a real SDXL layout, te2 q/k/v as in_proj rows, convs only with a conv rank", () => {
    const targets = extractTargets(layoutDescriptors("sdxl-sgm"));
    const te2 = targets.filter((t) => t.name.startsWith("lora_te2_"));
    expect(te2.length).toBe(32 * 6);
    expect(te2.filter((t) => t.target.rows).length).toBe(32 * 3);
    expect(targets.filter((t) => t.name.startsWith("lora_te1_")).length).toBe(12 * 6);
    expect(targets.some((t) => t.name === "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q")).toBe(true);
    expect(targets.filter((t) => t.conv).every((t) => t.shape.length === 4)).toBe(true);
  });

  it("names SD1 UNet modules with diffusers names, as sd-scripts writes them", () => {
    const names = new Set(extractTargets(layoutDescriptors("sd1-ldm")).map((t) => t.name));
    expect(names.has("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q")).toBe(true);
    expect(names.has("lora_unet_up_blocks_0_upsamplers_0_conv")).toBe(true);
    expect(names.has("lora_te_text_model_encoder_layers_11_mlp_fc2")).toBe(true);
  });
});
