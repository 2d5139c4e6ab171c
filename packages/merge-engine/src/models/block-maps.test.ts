import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { blockMapFor, blockOfKey, blockValuesFromList, FLUX_BLOCK_MAP, SD1_BLOCK_MAP, SD3_BLOCK_MAP, SDXL_BLOCK_MAP } from "./block-maps.js";

describe("block maps", () => {
  it("lists the SuperMerger block names", () => {
    expect(SD1_BLOCK_MAP.blocks).toHaveLength(27); // 26 + VAE
    expect(SD1_BLOCK_MAP.blocks.slice(0, 3)).toEqual(["BASE", "IN00", "IN01"]);
    expect(SDXL_BLOCK_MAP.blocks).toEqual(["BASE", "IN00", "IN01", "IN02", "IN03", "IN04", "IN05", "IN06", "IN07", "IN08", "M00", "OUT00", "OUT01", "OUT02", "OUT03", "OUT04", "OUT05", "OUT06", "OUT07", "OUT08", "VAE"]);
    expect(FLUX_BLOCK_MAP.blocks).toHaveLength(63); // BASE + 61 + VAE
  });

  it("maps SD1 keys as sd-mecha and SuperMerger do", () => {
    const b = (k: string) => blockOfKey(SD1_BLOCK_MAP, k);
    expect(b("model.diffusion_model.input_blocks.0.0.weight")).toBe("IN00");
    expect(b("model.diffusion_model.input_blocks.11.0.emb_layers.1.bias")).toBe("IN11");
    expect(b("model.diffusion_model.middle_block.1.proj_in.weight")).toBe("M00");
    expect(b("model.diffusion_model.output_blocks.5.2.conv.weight")).toBe("OUT05");
    expect(b("model.diffusion_model.out.2.bias")).toBe("OUT11");
    expect(b("cond_stage_model.transformer.text_model.final_layer_norm.weight")).toBe("BASE");
    expect(b("first_stage_model.decoder.conv_in.weight")).toBe("VAE");
    expect(b("model.diffusion_model.time_embed.0.weight")).toBe("BASE");
    expect(blockOfKey(SD1_BLOCK_MAP, "model.diffusion_model.time_embed.0.weight", { timeEmbedBlock: "IN00" })).toBe("IN00");
  });

  it("maps SDXL keys, label_emb with time_embed, out to OUT08", () => {
    const b = (k: string) => blockOfKey(SDXL_BLOCK_MAP, k);
    expect(b("model.diffusion_model.label_emb.0.0.weight")).toBe("BASE");
    expect(b("model.diffusion_model.out.0.weight")).toBe("OUT08");
    expect(b("conditioner.embedders.1.model.ln_final.weight")).toBe("BASE");
    expect(b("unet.input_blocks.8.1.proj_out.weight")).toBe("IN08");
  });

  it("puts every real SD1 and SDXL UNet key into a listed block, covering all blocks", () => {
    for (const [layout, map] of [["sd1-ldm", SD1_BLOCK_MAP], ["sdxl-sgm", SDXL_BLOCK_MAP]] as const) {
      const seen = new Set(layoutDescriptors(layout).map((d) => blockOfKey(map, d.name)));
      expect([...seen].sort()).toEqual([...map.blocks].sort());
    }
  });

  it("maps Flux and SD3 keys", () => {
    expect(blockOfKey(FLUX_BLOCK_MAP, "model.diffusion_model.double_blocks.7.img_mod.lin.weight")).toBe("D07");
    expect(blockOfKey(FLUX_BLOCK_MAP, "model.diffusion_model.single_blocks.37.linear1.weight")).toBe("S37");
    expect(blockOfKey(FLUX_BLOCK_MAP, "model.diffusion_model.guidance_in.in_layer.bias")).toBe("IN");
    expect(blockOfKey(FLUX_BLOCK_MAP, "text_encoders.t5xxl.transformer.shared.weight")).toBe("T5");
    expect(blockOfKey(FLUX_BLOCK_MAP, "text_encoders.clip_l.transformer.text_model.final_layer_norm.weight")).toBe("CLIP");
    expect(blockOfKey(SD3_BLOCK_MAP, "model.diffusion_model.joint_blocks.23.x_block.attn.qkv.weight")).toBe("J23");
    expect(blockOfKey(SD3_BLOCK_MAP, "model.diffusion_model.pos_embed")).toBe("IN");
    const fluxBlocks = new Set(layoutDescriptors("flux-flux").map((d) => blockOfKey(FLUX_BLOCK_MAP, d.name)));
    expect(fluxBlocks.size).toBe(62); // every block but BASE
  });

  it("falls back to BASE/VAE for unknown architectures", () => {
    const map = blockMapFor("unknown");
    expect(blockOfKey(map, "foo.bar")).toBe("BASE");
    expect(blockOfKey(map, "vae.decoder.x")).toBe("VAE");
  });
});

describe("blockValuesFromList", () => {
  it("reads SuperMerger lists: SD1 26 (+VAE), SDXL 20 (+VAE), Flux 61", () => {
    const sd1 = blockValuesFromList(SD1_BLOCK_MAP, Array.from({ length: 26 }, (_, i) => i))!;
    expect([sd1.BASE, sd1.IN00, sd1.IN11, sd1.M00, sd1.OUT00, sd1.OUT11, sd1.VAE]).toEqual([0, 1, 12, 13, 14, 25, undefined]);
    expect(blockValuesFromList(SD1_BLOCK_MAP, Array.from({ length: 27 }, (_, i) => i))!.VAE).toBe(26);
    const xl = blockValuesFromList(SDXL_BLOCK_MAP, Array.from({ length: 20 }, (_, i) => i))!;
    expect([xl.BASE, xl.IN08, xl.M00, xl.OUT08]).toEqual([0, 9, 10, 19]);
    const flux = blockValuesFromList(FLUX_BLOCK_MAP, Array.from({ length: 61 }, (_, i) => i))!;
    expect([flux.CLIP, flux.T5, flux.IN, flux.D00, flux.S37, flux.OUT, flux.BASE]).toEqual([0, 1, 2, 3, 59, 60, undefined]);
    expect(blockValuesFromList(SD1_BLOCK_MAP, [1, 2, 3])).toBeUndefined();
  });
});
