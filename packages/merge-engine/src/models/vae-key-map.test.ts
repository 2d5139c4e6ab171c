import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { countUpBlocks, shapesCompatibleIgnoringTrailingOnes, vaeKeyToLdm } from "./vae-key-map.js";

describe("vaeKeyToLdm", () => {
  it("keeps LDM names and strips prefixes", () => {
    expect(vaeKeyToLdm("encoder.down.0.block.1.conv1.weight")).toBe("encoder.down.0.block.1.conv1.weight");
    expect(vaeKeyToLdm("first_stage_model.decoder.conv_in.bias")).toBe("decoder.conv_in.bias");
    expect(vaeKeyToLdm("vae.quant_conv.weight")).toBe("quant_conv.weight");
  });

  it("renames diffusers keys, reversing decoder up blocks", () => {
    expect(vaeKeyToLdm("encoder.down_blocks.2.resnets.0.conv_shortcut.weight")).toBe("encoder.down.2.block.0.nin_shortcut.weight");
    expect(vaeKeyToLdm("encoder.down_blocks.1.downsamplers.0.conv.bias")).toBe("encoder.down.1.downsample.conv.bias");
    expect(vaeKeyToLdm("decoder.up_blocks.0.resnets.2.norm1.weight")).toBe("decoder.up.3.block.2.norm1.weight");
    expect(vaeKeyToLdm("decoder.up_blocks.2.upsamplers.0.conv.weight")).toBe("decoder.up.1.upsample.conv.weight");
    expect(vaeKeyToLdm("encoder.mid_block.resnets.1.conv2.weight")).toBe("encoder.mid.block_2.conv2.weight");
    expect(vaeKeyToLdm("decoder.mid_block.attentions.0.to_out.0.bias")).toBe("decoder.mid.attn_1.proj_out.bias");
    expect(vaeKeyToLdm("decoder.mid_block.attentions.0.group_norm.weight")).toBe("decoder.mid.attn_1.norm.weight");
    expect(vaeKeyToLdm("encoder.mid_block.attentions.0.query.weight")).toBe("encoder.mid.attn_1.q.weight");
    expect(vaeKeyToLdm("encoder.conv_norm_out.bias")).toBe("encoder.norm_out.bias");
  });

  it("maps a full diffusers-named VAE onto exactly the LDM key set of a checkpoint", () => {
    const ldm = layoutDescriptors("sd1-ldm", ["vae"]).map((d) => d.name.replace(/^first_stage_model\./, ""));
    // Build the diffusers naming by inverting the documented renames on the LDM keys.
    const toDiffusers = (k: string) =>
      k
        .replace(/^encoder\.down\.(\d+)\.block\.(\d+)\./, "encoder.down_blocks.$1.resnets.$2.")
        .replace(/^encoder\.down\.(\d+)\.downsample\.conv\./, "encoder.down_blocks.$1.downsamplers.0.conv.")
        .replace(/^decoder\.up\.(\d+)\.block\.(\d+)\./, (_, i: string, j: string) => `decoder.up_blocks.${3 - Number(i)}.resnets.${j}.`)
        .replace(/^decoder\.up\.(\d+)\.upsample\.conv\./, (_, i: string) => `decoder.up_blocks.${3 - Number(i)}.upsamplers.0.conv.`)
        .replace(/\.mid\.block_(\d)\./, (_, i: string) => `.mid_block.resnets.${Number(i) - 1}.`)
        .replace(/\.mid\.attn_1\.norm\./, ".mid_block.attentions.0.group_norm.")
        .replace(/\.mid\.attn_1\.([qkv])\./, (_, c: string) => `.mid_block.attentions.0.to_${c}.`)
        .replace(/\.mid\.attn_1\.proj_out\./, ".mid_block.attentions.0.to_out.0.")
        .replace(/\.norm_out\./, ".conv_norm_out.")
        .replace(/\.nin_shortcut\./, ".conv_shortcut.");
    const diffusers = ldm.map(toDiffusers);
    expect(diffusers.some((k) => k.includes("up_blocks"))).toBe(true);
    expect(countUpBlocks(diffusers)).toBe(4);
    expect(diffusers.map((k) => vaeKeyToLdm(k)).sort()).toEqual([...ldm].sort());
  });

  it("treats [C, C] and [C, C, 1, 1] as the same shape", () => {
    expect(shapesCompatibleIgnoringTrailingOnes([512, 512], [512, 512, 1, 1])).toBe(true);
    expect(shapesCompatibleIgnoringTrailingOnes([512, 512], [512, 256, 1, 1])).toBe(false);
    expect(shapesCompatibleIgnoringTrailingOnes([1], [1, 1])).toBe(true);
  });
});
