import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { buildLoraKeyMap, ldmUnetPathToDiffusers } from "./lora-key-map.js";

// The layouts are real files' key lists (test/fixtures/layouts, written by tools/fixtures/model_layouts.py):
// sd1-kohya holds diffusers names, sd1-ldm the LDM names of the same model; sdxl-kohya has HF CLIP
// names for both text encoders where sdxl-sgm has OpenCLIP resblocks. Each side checks the other.
const underscore = (s: string) => s.replace(/\./g, "_");
const isMatrix = (shape: readonly number[]) => shape.length >= 2;

describe("buildLoraKeyMap on real layouts", () => {
  it("places every SD1 kohya module (diffusers names) on the LDM key of the same shape", () => {
    const map = buildLoraKeyMap(layoutDescriptors("sd1-ldm"));
    const ldm = new Map(layoutDescriptors("sd1-ldm").map((d) => [d.name, d.shape]));
    const modules = layoutDescriptors("sd1-kohya", ["diffuser", "clip_l"]).filter((d) => d.name.endsWith(".weight") && isMatrix(d.shape));
    expect(modules.length).toBeGreaterThan(250);
    const missing: string[] = [];
    for (const d of modules) {
      const path = d.name.slice(0, -".weight".length);
      const name = path.startsWith("unet.") ? `lora_unet_${underscore(path.slice(5))}` : `lora_te_${underscore(path.slice(3))}`;
      const target = map.get(name);
      if (!target) missing.push(name);
      else expect(ldm.get(target.key), name).toEqual(d.shape);
      // PEFT / diffusers spelling of the same module
      if (path.startsWith("unet.")) expect(map.get(path)?.key, path).toBe(target?.key);
    }
    expect(missing).toEqual([]);
  });

  it("places every SDXL UNet module (LDM names) and both text encoders, te2 q/k/v onto in_proj_weight rows", () => {
    const sgm = layoutDescriptors("sdxl-sgm");
    const map = buildLoraKeyMap(sgm);
    const shapes = new Map(sgm.map((d) => [d.name, d.shape]));
    const kohya = layoutDescriptors("sdxl-kohya", ["diffuser", "clip_l", "clip_g"]).filter((d) => d.name.endsWith(".weight") && isMatrix(d.shape) && !/embeddings|text_projection/.test(d.name));
    let fused = 0;
    const missing: string[] = [];
    for (const d of kohya) {
      const path = d.name.slice(0, -".weight".length);
      const [part, rest] = [path.slice(0, path.indexOf(".")), path.slice(path.indexOf(".") + 1)];
      const name = { unet: "lora_unet_", te1: "lora_te1_", te2: "lora_te2_" }[part]! + underscore(rest);
      const target = map.get(name);
      if (!target) {
        missing.push(name);
        continue;
      }
      const qkv = /self_attn\.(q|k|v)_proj$/.exec(rest);
      if (part === "te2" && qkv) {
        fused++;
        expect(target.key).toMatch(/^conditioner\.embedders\.1\.model\.transformer\.resblocks\.\d+\.attn\.in_proj_weight$/);
        expect(target.rows).toEqual({ start: "qkv".indexOf(qkv[1]!) * 1280, count: d.shape[0] });
        expect(shapes.get(target.key)).toEqual([3840, 1280]);
      } else {
        expect(target.rows).toBeUndefined();
        expect(shapes.get(target.key), name).toEqual(d.shape);
      }
    }
    expect(missing).toEqual([]);
    expect(fused).toBe(32 * 3);
  });

  it("places kohya Flux modules (lora_unet_double_blocks_…) and ComfyUI diffusion_model.… names", () => {
    const flux = layoutDescriptors("flux-flux");
    const map = buildLoraKeyMap(flux);
    const blocks = flux.filter((d) => /^model\.diffusion_model\.(double|single)_blocks\.\d+\..*\.weight$/.test(d.name) && d.shape.length === 2);
    expect(blocks.length).toBeGreaterThan(300);
    for (const d of blocks) {
      const path = d.name.slice("model.diffusion_model.".length, -".weight".length);
      expect(map.get(`lora_unet_${underscore(path)}`)?.key).toBe(d.name);
      expect(map.get(`diffusion_model.${path}`)?.key).toBe(d.name);
    }
    expect(map.get("lora_te1_text_model_encoder_layers_0_self_attn_q_proj")?.key).toBe("text_encoders.clip_l.transformer.text_model.encoder.layers.0.self_attn.q_proj.weight");
  });

  it("places diffusers Flux modules on BFL's fused qkv / linear1 rows, as ComfyUI's flux_to_diffusers does", () => {
    const flux = layoutDescriptors("flux-flux");
    const map = buildLoraKeyMap(flux);
    const h = 3072; // Flux.1 hidden size; the single blocks' MLP is 4h
    const doubles = new Set(flux.map((d) => /double_blocks\.(\d+)\./.exec(d.name)?.[1]).filter((x) => x !== undefined)).size;
    const singles = new Set(flux.map((d) => /single_blocks\.(\d+)\./.exec(d.name)?.[1]).filter((x) => x !== undefined)).size;
    expect([doubles, singles]).toEqual([19, 38]);
    for (let i = 0; i < doubles; i++) {
      const qkv = `model.diffusion_model.double_blocks.${i}.img_attn.qkv.weight`;
      ["to_q", "to_k", "to_v"].forEach((leaf, k) => expect(map.get(`transformer.transformer_blocks.${i}.attn.${leaf}`)).toEqual({ key: qkv, rows: { start: k * h, count: h } }));
      ["add_q_proj", "add_k_proj", "add_v_proj"].forEach((leaf, k) =>
        expect(map.get(`transformer_blocks.${i}.attn.${leaf}`)).toEqual({ key: `model.diffusion_model.double_blocks.${i}.txt_attn.qkv.weight`, rows: { start: k * h, count: h } }),
      );
      expect(map.get(`lora_transformer_transformer_blocks_${i}_ff_context_net_2`)).toEqual({ key: `model.diffusion_model.double_blocks.${i}.txt_mlp.2.weight` });
    }
    for (let i = 0; i < singles; i++) {
      const linear1 = `model.diffusion_model.single_blocks.${i}.linear1.weight`;
      expect(map.get(`transformer.single_transformer_blocks.${i}.attn.to_v`)).toEqual({ key: linear1, rows: { start: 2 * h, count: h } });
      expect(map.get(`lycoris_single_transformer_blocks_${i}_proj_mlp`)).toEqual({ key: linear1, rows: { start: 3 * h, count: 4 * h } });
      expect(map.get(`transformer.single_transformer_blocks.${i}.proj_out`)).toEqual({ key: `model.diffusion_model.single_blocks.${i}.linear2.weight` });
    }
    expect(map.get("transformer.x_embedder")).toEqual({ key: "model.diffusion_model.img_in.weight" });
    expect(map.get("transformer.time_text_embed.guidance_embedder.linear_2")).toEqual({ key: "model.diffusion_model.guidance_in.out_layer.weight" });
    // norm_out.linear holds scale and shift in the other order: not a row slice, left unplaced.
    expect(map.has("transformer.norm_out.linear")).toBe(false);
    // SD checkpoints get none of these names.
    expect(buildLoraKeyMap(layoutDescriptors("sdxl-sgm")).has("transformer.proj_out")).toBe(false);
  });

  it("maps SD1 block paths as SuperMerger's table does", () => {
    expect(ldmUnetPathToDiffusers("input_blocks.4.1.proj_in")).toBe("down_blocks.1.attentions.0.proj_in");
    expect(ldmUnetPathToDiffusers("input_blocks.6.0.op")).toBe("down_blocks.1.downsamplers.0.conv");
    expect(ldmUnetPathToDiffusers("output_blocks.5.2.conv")).toBe("up_blocks.1.upsamplers.0.conv");
    expect(ldmUnetPathToDiffusers("middle_block.2.out_layers.3")).toBe("mid_block.resnets.1.conv2");
    expect(ldmUnetPathToDiffusers("time_embed.2")).toBe("time_embedding.linear_2");
  });
});
