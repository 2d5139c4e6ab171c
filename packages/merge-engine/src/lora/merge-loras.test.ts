import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { decodeToF32, openSafetensors } from "@stmerge/core-tensors";
import { tempDir } from "@stmerge/test-utils";
import { bakeLoras } from "./bake-lora.js";
import { loadLora } from "./load-lora.js";
import { mergeLoras } from "./merge-loras.js";

// Expected: torch's bake of the checkpoint with both LoRAs at their weights (tools/fixtures/lora_fixtures.py).
const FIXTURES = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));
const fixture = (name: string) => join(FIXTURES, name);
const sumCase = (JSON.parse(readFileSync(fixture("cases.json"), "utf8")) as { mergeSum: { checkpoint: string; loras: [string, number][]; expected: string } }).mergeSum;
const dir = tempDir("stmerge-lora-merge-");
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("mergeLoras", () => {
  it("bake(merge(A·wa, B·wb)) equals torch's W + wa·ΔA + wb·ΔB (weights mean r, not r·|r|)", async () => {
    expect(sumCase.loras.some(([, w]) => w < 0)).toBe(true);
    const inputs = await Promise.all(sumCase.loras.map(async ([name, weight]) => ({ lora: await loadLora(fixture(name)), weight })));
    const merged = join(dir, "merged.safetensors");
    const r = await mergeLoras(inputs, { outputPath: merged, rank: 64 });
    const methods = Object.fromEntries(r.modules.map((m) => [m.name, m.method]));
    expect(methods.lora_unet_output_blocks_2_2_conv).toBe("svd"); // Tucker: rebuilt and re-compressed
    expect(methods.lora_unet_input_blocks_4_0_in_layers_2).toBe("concat");
    expect(r.modules.filter((m) => m.method === "svd").every((m) => m.relativeError < 1e-5)).toBe(true);

    const baked = join(dir, "baked.safetensors");
    await bakeLoras(fixture(sumCase.checkpoint), [{ lora: await loadLora(merged), strength: 1 }], { outputPath: baked });
    const [ours, want, before] = await Promise.all([openSafetensors(baked), openSafetensors(fixture(sumCase.expected)), openSafetensors(fixture(sumCase.checkpoint))]);
    try {
      for (const d of want.descriptors) {
        const [o, w, b] = await Promise.all([ours, want, before].map(async (s) => decodeToF32(await s.read(d.name), d.dtype)));
        for (let i = 0; i < w!.length; i++) {
          // one fp16 ulp at the operands' magnitude
          const mag = Math.max(Math.abs(w![i]!), Math.abs(b![i]!), 2 ** -14);
          expect(Math.abs(o![i]! - w![i]!), d.name).toBeLessThanOrEqual(2 ** (Math.floor(Math.log2(mag)) - 10));
        }
      }
    } finally {
      await Promise.all([ours.close(), want.close(), before.close()]);
    }
  });

  it("re-compresses by SVD when the ranks do not fit, reporting the error it costs", async () => {
    const lora = await loadLora(fixture("sdxl-kohya-lora.safetensors"));
    const r = await mergeLoras([{ lora, weight: 1 }, { lora, weight: 1 }], { outputPath: join(dir, "rank2.safetensors"), rank: 2 });
    const toQ = r.modules.find((m) => m.name === "lora_unet_input_blocks_4_1_transformer_blocks_0_attn1_to_q")!;
    expect(toQ).toMatchObject({ method: "svd", rank: 2, sources: 2 });
    expect(toQ.relativeError).toBeGreaterThan(0.01);
    expect(toQ.relativeError).toBeLessThan(1);
  });

  it("refuses DoRA modules (their magnitude normalisation is not a low-rank sum) and writes nothing", async () => {
    const lora = await loadLora(fixture("sd1-dora.safetensors"));
    const outputPath = join(dir, "dora-merged.safetensors");
    await expect(mergeLoras([{ lora, weight: 1 }], { outputPath, rank: 8 })).rejects.toThrow(/is DoRA \(dora_scale\).*cannot be merged/);
    expect(existsSync(outputPath)).toBe(false);
  });
});
