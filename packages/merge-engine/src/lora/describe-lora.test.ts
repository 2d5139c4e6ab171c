import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { openSafetensors } from "@stmerge/core-tensors";
import { layoutDescriptors } from "../../test/load-layout.js";
import { describeLora } from "./describe-lora.js";

const FIXTURES = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));

describe("describeLora", () => {
  it("summarises the torch-made SDXL kohya LoRA: formats, ranks, alphas, targets, base", async () => {
    const source = await openSafetensors(join(FIXTURES, "sdxl-kohya-lora.safetensors"));
    try {
      const s = describeLora(source.descriptors, new Map([["lora_unet_time_embed_0.alpha", 4]]))!;
      expect(s).toMatchObject({ modules: 11, formats: { lora: 11 }, conventions: ["kohya"], rank: { min: 2, max: 4 }, alphas: [4], targets: { unet: 3, te1: 2, te2: 6 }, baseArchitecture: "SDXL", unrecognised: 0 });
    } finally {
      await source.close();
    }
  });

  it("tells SD1 from the attn2.to_k input width, names LyCORIS formats, and ignores checkpoints", async () => {
    const sd1 = await openSafetensors(join(FIXTURES, "sd1-kohya-diffusers-names.safetensors"));
    const lokr = await openSafetensors(join(FIXTURES, "sdxl-lokr.safetensors"));
    try {
      // the fixture has no attn2, so SD1 is "unknown" here; the layout-derived names below carry it
      expect(describeLora(sd1.descriptors)!.baseArchitecture).toBe("unknown");
      expect(describeLora(lokr.descriptors)!.formats).toEqual({ lokr: 3 });
    } finally {
      await Promise.all([sd1.close(), lokr.close()]);
    }
    const fake = [{ name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", dtype: "F16" as const, shape: [4, 768], byteLength: 6144 },
      { name: "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", dtype: "F16" as const, shape: [320, 4], byteLength: 2560 }];
    expect(describeLora(fake)).toMatchObject({ baseArchitecture: "SD1", evidence: "attn2.to_k input width 768" });
    expect(describeLora(layoutDescriptors("sdxl-sgm"))).toBeUndefined();
  });
});
