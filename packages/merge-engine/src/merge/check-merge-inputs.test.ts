import { describe, expect, it } from "vitest";
import { layoutDescriptors, type LayoutName } from "../../test/load-layout.js";
import { detectArchitecture } from "../models/detect-architecture.js";
import { checkMergeInputs } from "./check-merge-inputs.js";

const d = (name: string, shape: number[]) => ({ name, shape });
const check = (...inputs: { path: string; descriptors: readonly { name: string; shape: readonly number[] }[] }[]) => () => checkMergeInputs(inputs, inputs.map((i) => detectArchitecture(i.descriptors)));

// Key names as kohya's sd-scripts and PEFT write them for SD1 LoRAs.
const KOHYA_LORA = [
  d("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.alpha", []),
  d("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_down.weight", [8, 768]),
  d("lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn2_to_k.lora_up.weight", [320, 8]),
  d("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", [8, 768]),
  d("lora_te_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", [3072, 8]),
];
const PEFT_LORA = [d("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_A.weight", [8, 768]), d("unet.down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.lora_B.weight", [320, 8])];
const sd1 = { path: "/m/sd1.safetensors", descriptors: layoutDescriptors("sd1-ldm") };

describe("checkMergeInputs refuses what is not a full checkpoint, naming the file and what it is", () => {
  it.each(["sd1-ldm", "sd1-kohya", "sdxl-sgm", "sdxl-kohya", "sd3-comfyui", "flux-flux"] as LayoutName[])("accepts a full %s checkpoint", (name) => {
    expect(check({ path: "/m/a.safetensors", descriptors: layoutDescriptors(name) })).not.toThrow();
  });

  it.each([
    ["a kohya LoRA", KOHYA_LORA, "a LoRA", "stmerge lora bake"],
    ["a PEFT LoRA", PEFT_LORA, "a LoRA", "stmerge lora bake"],
    ["a standalone VAE", [d("encoder.conv_in.weight", [128, 3, 3, 3]), d("decoder.conv_out.weight", [3, 128, 3, 3]), d("quant_conv.weight", [8, 8, 1, 1])], "a standalone VAE", "`vae` field"],
    ["an embedding", [d("emb_params", [4, 768])], "a textual-inversion embedding", "cannot be merged"],
    ["an unknown file", [d("fc.weight", [10, 4]), d("fc.bias", [10])], "an unknown model of no known architecture", "full SD1.5, SD2, SDXL, SD3 or Flux"],
    ["a text-encoder-only part", [d("cond_stage_model.transformer.text_model.final_layer_norm.weight", [8])], "a checkpoint of no known architecture", "full SD1.5"],
  ])("refuses %s as model 1", (_, descriptors, what, instead) => {
    const odd = { path: "/m/odd.safetensors", descriptors };
    expect(check(sd1, odd)).toThrow(expect.objectContaining({ code: "MERGE_NOT_A_CHECKPOINT", file: "/m/odd.safetensors", message: expect.stringContaining(`/m/odd.safetensors: is ${what}`) }));
    expect(check(sd1, odd)).toThrow(expect.objectContaining({ message: expect.stringContaining(instead) }));
  });

  it("names model 0 when model 0 is the odd one", () => {
    expect(check({ path: "/m/lora.safetensors", descriptors: KOHYA_LORA }, sd1)).toThrow(expect.objectContaining({ file: "/m/lora.safetensors", details: { kind: "lora" } }));
  });
});
