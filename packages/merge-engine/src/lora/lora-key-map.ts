import type { TensorDescriptor } from "@stmerge/core-tensors";

/**
 * Where a LoRA module lands in a checkpoint. The map is built from the TARGET checkpoint's own
 * keys (as ComfyUI's model_lora_keys_unet/clip do): every weight key gets the names LoRA
 * trainers give it (kohya `lora_unet_…`/`lora_te*_…`, diffusers/PEFT `unet.…`/`text_encoder.…`,
 * ComfyUI `diffusion_model.…`), so nothing is guessed by splitting names on `_`.
 */
export interface LoraTarget {
  /** The checkpoint tensor the delta is added to. */
  readonly key: string;
  /** Row slice of the target (OpenCLIP fused q/k/v `in_proj_weight`), else the whole tensor. */
  readonly rows?: { readonly start: number; readonly count: number };
}

type Descriptor = Pick<TensorDescriptor, "name" | "shape">;

const UNET_PREFIXES = ["model.diffusion_model.", "unet.", "diffusion_model."];

/**
 * Text encoders: checkpoint prefix → the LoRA prefixes that name it. SD1/SD2 files have one TE
 * (`lora_te_`), SDXL two (`lora_te1_` CLIP-L, `lora_te2_` OpenCLIP-G), Flux CLIP-L + T5
 * (`lora_te1_`, `lora_te3_`; sd-scripts flux_utils).
 */
const TEXT_ENCODERS: readonly { readonly prefix: string; readonly kohya: readonly string[]; readonly diffusers: readonly string[] }[] = [
  { prefix: "cond_stage_model.transformer.", kohya: ["lora_te_"], diffusers: ["text_encoder."] },
  { prefix: "cond_stage_model.model.", kohya: ["lora_te_"], diffusers: ["text_encoder."] },
  { prefix: "te.", kohya: ["lora_te_"], diffusers: ["text_encoder."] },
  { prefix: "conditioner.embedders.0.transformer.", kohya: ["lora_te1_"], diffusers: ["text_encoder."] },
  { prefix: "conditioner.embedders.1.model.", kohya: ["lora_te2_"], diffusers: ["text_encoder_2."] },
  { prefix: "te1.", kohya: ["lora_te1_"], diffusers: ["text_encoder."] },
  { prefix: "te2.", kohya: ["lora_te2_"], diffusers: ["text_encoder_2."] },
  { prefix: "text_encoders.clip_l.transformer.", kohya: ["lora_te1_"], diffusers: ["text_encoder."] },
  { prefix: "text_encoders.t5xxl.transformer.", kohya: ["lora_te3_"], diffusers: ["text_encoder_3."] },
];

/** OpenCLIP resblock leaves → the HF CLIP names LoRAs use (kohya sdxl_model_util). */
const OPEN_CLIP_LEAVES: readonly [RegExp, string][] = [
  [/^transformer\.resblocks\.(\d+)\.attn\.out_proj$/, "text_model.encoder.layers.$1.self_attn.out_proj"],
  [/^transformer\.resblocks\.(\d+)\.mlp\.c_fc$/, "text_model.encoder.layers.$1.mlp.fc1"],
  [/^transformer\.resblocks\.(\d+)\.mlp\.c_proj$/, "text_model.encoder.layers.$1.mlp.fc2"],
];
const OPEN_CLIP_IN_PROJ = /^transformer\.resblocks\.(\d+)\.attn\.in_proj_weight$/;

const RESNET_LEAVES: Readonly<Record<string, string>> = {
  "in_layers.0": "norm1",
  "in_layers.2": "conv1",
  "out_layers.0": "norm2",
  "out_layers.3": "conv2",
  "emb_layers.1": "time_emb_proj",
  skip_connection: "conv_shortcut",
};

/**
 * The diffusers name of an LDM/SGM UNet module path (SuperMerger convert_diffusers_name_to_compvis,
 * inverted), or undefined when the path has none. `upsamplerIndex` tells which output block
 * sub-index holds an Upsample (the last one of the block).
 */
export function ldmUnetPathToDiffusers(path: string): string | undefined {
  let m: RegExpExecArray | null;
  const resnet = (base: string, leaf: string) => {
    const mapped = RESNET_LEAVES[leaf];
    return mapped === undefined ? undefined : `${base}.${mapped}`;
  };
  if ((m = /^input_blocks\.0\.0$/.exec(path))) return "conv_in";
  if ((m = /^time_embed\.(0|2)$/.exec(path))) return `time_embedding.linear_${m[1] === "0" ? 1 : 2}`;
  if ((m = /^label_emb\.0\.(0|2)$/.exec(path))) return `add_embedding.linear_${m[1] === "0" ? 1 : 2}`;
  if ((m = /^out\.(0|2)$/.exec(path))) return m[1] === "0" ? "conv_norm_out" : "conv_out";
  if ((m = /^input_blocks\.(\d+)\.0\.op$/.exec(path))) {
    const n = Number(m[1]);
    return (n - 3) % 3 === 0 ? `down_blocks.${(n - 3) / 3}.downsamplers.0.conv` : undefined;
  }
  if ((m = /^input_blocks\.(\d+)\.(0|1)\.(.+)$/.exec(path))) {
    const n = Number(m[1]) - 1;
    const [i, j] = [Math.floor(n / 3), n % 3];
    if (j === 2) return undefined;
    return m[2] === "0" ? resnet(`down_blocks.${i}.resnets.${j}`, m[3]!) : `down_blocks.${i}.attentions.${j}.${m[3]}`;
  }
  if ((m = /^middle_block\.(\d)\.(.+)$/.exec(path))) {
    if (m[1] === "1") return `mid_block.attentions.0.${m[2]}`;
    return resnet(`mid_block.resnets.${Number(m[1]) / 2}`, m[2]!);
  }
  if ((m = /^output_blocks\.(\d+)\.(\d)\.(.+)$/.exec(path))) {
    const n = Number(m[1]);
    const [i, j] = [Math.floor(n / 3), n % 3];
    if (m[3] === "conv") return `up_blocks.${i}.upsamplers.0.conv`;
    if (m[2] === "0") return resnet(`up_blocks.${i}.resnets.${j}`, m[3]!);
    if (m[2] === "1") return `up_blocks.${i}.attentions.${j}.${m[3]}`;
  }
  return undefined;
}

const underscore = (s: string) => s.replace(/\./g, "_");

/**
 * Flux (BFL layout, as in checkpoints) → the diffusers module names that diffusers-format Flux
 * LoRAs use, after ComfyUI's `comfy/utils.py flux_to_diffusers`. Separate q/k/v (and the single
 * blocks' MLP input) are row slices of BFL's fused `qkv` / `linear1`; the hidden size is the
 * fused weight's column count. `norm_out.linear` (scale and shift swapped) is not mapped.
 */
const FLUX_DOUBLE_BLOCK: Readonly<Record<string, readonly string[]>> = {
  "img_attn.proj": ["attn.to_out.0"],
  "txt_attn.proj": ["attn.to_add_out"],
  "img_mod.lin": ["norm1.linear"],
  "txt_mod.lin": ["norm1_context.linear"],
  "img_mlp.0": ["ff.net.0.proj", "ff.linear_in"],
  "img_mlp.2": ["ff.net.2", "ff.linear_out"],
  "txt_mlp.0": ["ff_context.net.0.proj", "ff_context.linear_in"],
  "txt_mlp.2": ["ff_context.net.2", "ff_context.linear_out"],
};
const FLUX_DOUBLE_QKV: Readonly<Record<string, readonly [string, string, string]>> = {
  "img_attn.qkv": ["attn.to_q", "attn.to_k", "attn.to_v"],
  "txt_attn.qkv": ["attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"],
};
const FLUX_SINGLE_BLOCK: Readonly<Record<string, readonly string[]>> = {
  "modulation.lin": ["norm.linear"],
  linear2: ["proj_out", "attn.to_out"],
};
const FLUX_TOP: Readonly<Record<string, string>> = {
  img_in: "x_embedder",
  txt_in: "context_embedder",
  "time_in.in_layer": "time_text_embed.timestep_embedder.linear_1",
  "time_in.out_layer": "time_text_embed.timestep_embedder.linear_2",
  "vector_in.in_layer": "time_text_embed.text_embedder.linear_1",
  "vector_in.out_layer": "time_text_embed.text_embedder.linear_2",
  "guidance_in.in_layer": "time_text_embed.guidance_embedder.linear_1",
  "guidance_in.out_layer": "time_text_embed.guidance_embedder.linear_2",
  "final_layer.linear": "proj_out",
};
const FLUX_CHECKPOINT = /(^|\.)double_blocks\.\d+\.img_attn\.qkv\.weight$/;

/** A diffusers Flux module path as LoRA trainers name it (ComfyUI model_lora_keys_unet's Flux branch). */
function fluxDiffusersNames(path: string): string[] {
  return [`transformer.${path}`, `lycoris_${underscore(path)}`, `lora_transformer_${underscore(path)}`, path];
}

/** (diffusers path, target) pairs of one BFL Flux weight (`path` without prefix and `.weight`). */
function fluxDiffusersTargets(path: string, key: string, shape: readonly number[]): [string, LoraTarget][] {
  const out: [string, LoraTarget][] = [];
  const hidden = shape[1] ?? 0;
  let m: RegExpExecArray | null;
  if ((m = /^double_blocks\.(\d+)\.(.+)$/.exec(path))) {
    const from = `transformer_blocks.${m[1]}`;
    const qkv = FLUX_DOUBLE_QKV[m[2]!];
    if (qkv && shape.length === 2 && shape[0] === 3 * hidden) qkv.forEach((leaf, i) => out.push([`${from}.${leaf}`, { key, rows: { start: i * hidden, count: hidden } }]));
    for (const leaf of FLUX_DOUBLE_BLOCK[m[2]!] ?? []) out.push([`${from}.${leaf}`, { key }]);
  } else if ((m = /^single_blocks\.(\d+)\.(.+)$/.exec(path))) {
    const from = `single_transformer_blocks.${m[1]}`;
    if (m[2] === "linear1" && shape.length === 2 && shape[0]! > 3 * hidden) {
      ["attn.to_q", "attn.to_k", "attn.to_v"].forEach((leaf, i) => out.push([`${from}.${leaf}`, { key, rows: { start: i * hidden, count: hidden } }]));
      out.push([`${from}.proj_mlp`, { key, rows: { start: 3 * hidden, count: shape[0]! - 3 * hidden } }]);
    }
    for (const leaf of FLUX_SINGLE_BLOCK[m[2]!] ?? []) out.push([`${from}.${leaf}`, { key }]);
  } else if (FLUX_TOP[path] !== undefined) {
    out.push([FLUX_TOP[path], { key }]);
  }
  return out;
}

/**
 * `LoRA module name → target` for one checkpoint, from its own keys. Covers SD1.x/SD2.x (LDM),
 * SDXL (SGM and kohya-diffusers layouts), Flux (kohya `lora_unet_double_blocks_…`, ComfyUI
 * `diffusion_model.…`, and diffusers `transformer.transformer_blocks.N.attn.to_q` etc. folded
 * into the fused `qkv` / `linear1` rows), and the text encoders, with SDXL/SD2 OpenCLIP q/k/v folded into the
 * rows of the fused `attn.in_proj_weight`.
 */
export function buildLoraKeyMap(descriptors: readonly Descriptor[]): Map<string, LoraTarget> {
  const map = new Map<string, LoraTarget>();
  const add = (names: readonly string[], target: LoraTarget) => {
    for (const name of names) if (!map.has(name)) map.set(name, target);
  };
  const flux = descriptors.some((d) => FLUX_CHECKPOINT.test(d.name));
  for (const d of descriptors) {
    const key = d.name;
    const unetPrefix = UNET_PREFIXES.find((p) => key.startsWith(p));
    if (unetPrefix && key.endsWith(".weight")) {
      const path = key.slice(unetPrefix.length, -".weight".length);
      const diffusers = ldmUnetPathToDiffusers(path) ?? path;
      const names = [`lora_unet_${underscore(path)}`, `lora_unet_${underscore(diffusers)}`, `unet.${diffusers}`, `diffusion_model.${path}`, `transformer.${path}`, `lycoris_${underscore(path)}`];
      // Old diffusers attention-processor LoRAs: `unet.…attn1.processor.to_q_lora.up.weight` (ComfyUI).
      if (/\.to_(q|k|v|out\.0)$/.test(diffusers)) names.push(`unet.${diffusers.replace(/\.to_(q|k|v|out)(\.0)?$/, ".processor.to_$1")}`);
      add(names, { key });
      if (flux) for (const [diffusersPath, target] of fluxDiffusersTargets(path, key, d.shape)) add(fluxDiffusersNames(diffusersPath), target);
      continue;
    }
    const te = TEXT_ENCODERS.find((t) => key.startsWith(t.prefix));
    if (!te) continue;
    const rest = key.slice(te.prefix.length);
    const inProj = OPEN_CLIP_IN_PROJ.exec(rest);
    if (inProj) {
      const width = d.shape[1] ?? 0;
      if (d.shape.length !== 2 || d.shape[0] !== 3 * width) continue;
      ["q", "k", "v"].forEach((leaf, index) => {
        const path = `text_model.encoder.layers.${inProj[1]}.self_attn.${leaf}_proj`;
        add([...te.kohya.map((p) => p + underscore(path)), ...te.diffusers.map((p) => p + path)], { key, rows: { start: index * width, count: width } });
      });
      continue;
    }
    if (!rest.endsWith(".weight")) continue;
    let path = rest.slice(0, -".weight".length);
    // Some old SD1 files lack the `text_model.` level; LoRAs always name it.
    if (te.prefix === "cond_stage_model.transformer." && /^(encoder|embeddings|final_layer_norm)\./.test(path)) path = `text_model.${path}`;
    for (const [pattern, replacement] of OPEN_CLIP_LEAVES) if (pattern.test(path)) path = path.replace(pattern, replacement);
    add([...te.kohya.map((p) => p + underscore(path)), ...te.diffusers.map((p) => p + path)], { key });
  }
  return map;
}
