import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CHECKPOINT_KEYS, LORA_KEYS, safetensorsBytes, VAE_KEYS, writeFile } from "../test/library-tree.js";
import { kindFromTensorNames, sniffModelKind } from "./sniff-model-kind.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-library-sniff-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("sniffModelKind", () => {
  it("tells checkpoint, LoRA and VAE files apart by their tensor names", async () => {
    const cases = { checkpoint: CHECKPOINT_KEYS, lora: LORA_KEYS, vae: VAE_KEYS };
    for (const [kind, keys] of Object.entries(cases)) {
      const path = join(dir, `${kind}.safetensors`);
      writeFile(path, safetensorsBytes(keys, 64, 1, { format: "pt" }));
      expect(await sniffModelKind(path)).toBe(kind);
    }
  });
  it("says nothing about files that are not safetensors or whose header is cut short", async () => {
    writeFile(join(dir, "pickle.safetensors"), "PK\u0003\u0004 not safetensors at all");
    expect(await sniffModelKind(join(dir, "pickle.safetensors"))).toBeUndefined();
    const cut = safetensorsBytes(LORA_KEYS, 64, 1).subarray(0, 40);
    writeFile(join(dir, "cut.safetensors"), cut);
    expect(await sniffModelKind(join(dir, "cut.safetensors"))).toBeUndefined();
    expect(await sniffModelKind(join(dir, "missing.safetensors"))).toBeUndefined();
  });
  it("knows the other kinds from their published key names", () => {
    expect(kindFromTensorNames(["clip_l", "clip_g"])).toBe("embedding");
    expect(kindFromTensorNames(["emb_params"])).toBe("embedding");
    expect(kindFromTensorNames(["control_model.input_hint_block.0.weight", "control_model.zero_convs.0.0.weight"])).toBe("controlnet");
    expect(kindFromTensorNames(["conv_first.weight", "RRDB_trunk.0.RDB1.conv1.weight"])).toBe("upscaler");
    expect(kindFromTensorNames(["double_blocks.0.img_attn.proj.weight"])).toBe("diffusion-model");
    expect(kindFromTensorNames(["model.diffusion_model.out.2.weight"])).toBe("diffusion-model");
    expect(kindFromTensorNames(["lora_te1_text_model_encoder_layers_0_mlp_fc1.hada_w1_a"])).toBe("lora");
    expect(kindFromTensorNames(["vision_model.encoder.layers.0.mlp.fc1.weight"])).toBe("clip-vision");
    expect(kindFromTensorNames(["text_model.encoder.layers.0.mlp.fc1.weight"])).toBe("text-encoder");
    expect(kindFromTensorNames(["some.other.weight"])).toBeUndefined();
  });
});
