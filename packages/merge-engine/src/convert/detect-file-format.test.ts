import { describe, expect, it } from "vitest";
import { detectFileFormat } from "./detect-file-format.js";

const d = (name: string, shape: number[] = [4]) => ({ name, shape });

describe("detectFileFormat", () => {
  it("SD checkpoints, with the architecture from key shapes", () => {
    const report = detectFileFormat([
      d("model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [320, 768]),
      d("cond_stage_model.transformer.text_model.embeddings.token_embedding.weight", [49408, 768]),
      d("first_stage_model.decoder.conv_out.weight", [3, 128, 3, 3]),
    ]);
    expect(report.kind).toBe("sd-checkpoint");
    expect(report.architecture?.architecture).toBe("sd1");
    // One vocabulary: the label is the architecture's, as scan, merge and the cache write it.
    expect(report.label).toBe("SD1.5");
  });
  it("VAE, LoRA, textual inversion, upscaler, unknown", () => {
    expect(detectFileFormat([d("encoder.conv_in.weight"), d("decoder.conv_out.weight"), d("quant_conv.weight")]).kind).toBe("vae");
    expect(detectFileFormat([d("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"), d("lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight"), d("lora_unet_down_blocks_0_attentions_0_proj_in.alpha", [])]).kind).toBe("lora");
    expect(detectFileFormat([d("emb_params", [4, 768])]).kind).toBe("textual-inversion");
    expect(detectFileFormat([d("clip_l", [2, 768]), d("clip_g", [2, 1280])]).kind).toBe("textual-inversion");
    expect(detectFileFormat([d("conv_first.weight"), d("body.0.rdb1.conv1.weight"), d("conv_last.weight")]).kind).toBe("upscaler");
    expect(detectFileFormat([d("w")], { wrapperPath: ["params_ema"] }).kind).toBe("upscaler");
    expect(detectFileFormat([d("fc.weight"), d("fc.bias")]).kind).toBe("unknown");
    expect(detectFileFormat([]).kind).toBe("unknown");
  });
});
