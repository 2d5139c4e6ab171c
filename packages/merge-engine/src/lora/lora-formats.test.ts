import { describe, expect, it } from "vitest";
import { detectLoraModules, looksLikeLora } from "./lora-formats.js";

const keys = (...names: string[]) => names.map((name) => ({ name }));

describe("detectLoraModules", () => {
  it("names each module's format from its suffixes, whatever the convention", () => {
    const layout = detectLoraModules(
      keys(
        "lora_unet_a.lora_down.weight",
        "lora_unet_a.lora_up.weight",
        "lora_unet_a.alpha",
        "lora_unet_b.lora_down.weight",
        "lora_unet_b.lora_mid.weight",
        "lora_unet_b.lora_up.weight",
        "unet.c.lora_A.weight",
        "unet.c.lora_B.weight",
        "unet.d.processor.to_q_lora.down.weight",
        "unet.d.processor.to_q_lora.up.weight",
        "e.hada_w1_a",
        "e.hada_w1_b",
        "e.hada_w2_a",
        "e.hada_w2_b",
        "f.lokr_w1",
        "f.lokr_w2_a",
        "f.lokr_w2_b",
        "g.diff",
      ),
    );
    expect(Object.fromEntries(layout.modules.map((m) => [m.name, [m.format, m.convention]]))).toEqual({
      lora_unet_a: ["lora", "kohya"],
      lora_unet_b: ["locon-tucker", "kohya"],
      "unet.c": ["lora", "peft"],
      "unet.d.processor.to_q": ["lora", "diffusers"],
      e: ["loha", "lycoris"],
      f: ["lokr", "lycoris"],
      g: ["full", "comfyui"],
    });
    expect(layout.unrecognised).toEqual([]);
  });

  it("lists incomplete modules and unknown keys instead of guessing; a DoRA magnitude joins its module", () => {
    const layout = detectLoraModules(keys("a.lora_down.weight", "b.hada_w1_a", "c.lora_down.weight", "c.lora_up.weight", "c.dora_scale", "d.lokr_w1", "e.oft_blocks", "f.alpha"));
    expect(layout.modules).toEqual([{ name: "c", format: "lora", convention: "kohya", parts: { down: "c.lora_down.weight", up: "c.lora_up.weight", dora_scale: "c.dora_scale" } }]);
    expect(Object.fromEntries(layout.unrecognised.map((u) => [u.key, u.reason]))).toEqual({
      a: "has a down matrix without its up partner",
      b: "LoHa module lacks one of hada_w1_a/w1_b/w2_a/w2_b",
      d: "LoKr module lacks w1 (lokr_w1 or lokr_w1_a+b) or w2 (lokr_w2 or lokr_w2_a+b)",
      "e.oft_blocks": "no known LoRA suffix",
      f: "has only an alpha, no weights",
    });
  });

  it("tells LoRA files from checkpoints", () => {
    expect(looksLikeLora(keys("lora_te_x.lora_down.weight", "lora_te_x.lora_up.weight", "lora_te_x.alpha"))).toBe(true);
    expect(looksLikeLora(keys("model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.bias"))).toBe(false);
    expect(looksLikeLora([])).toBe(false);
  });
});
