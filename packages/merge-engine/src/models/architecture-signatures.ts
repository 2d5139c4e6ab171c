/**
 * Model knowledge as data: which keys and shapes identify an architecture, a key layout, a
 * variant or a prediction type. `detectArchitecture` only walks these tables, so supporting a
 * new family means adding rows here.
 */

export type ArchitectureId = "sd1" | "sd2" | "sdxl" | "sdxl-refiner" | "sd3" | "flux" | "vae" | "unknown";

/** How the keys of a file are named (the same architecture ships in several namings). */
export type KeyLayout = "ldm" | "sgm" | "kohya" | "comfyui" | "flux" | "unet-ldm" | "unet-diffusers" | "vae-ldm" | "vae-diffusers" | "unknown";

export type ModelVariant = "standard" | "inpainting" | "pix2pix";
export type PredictionType = "epsilon" | "v" | "flow" | "unknown";
export type SdxlDerivative = "Pony" | "Illustrious" | "NoobAI";

/** The label written into manifests for each architecture (Python-tool compatible where it has one). */
export const ARCHITECTURE_LABELS: Readonly<Record<ArchitectureId, string>> = {
  sd1: "SD1.5",
  sd2: "SD2.1",
  sdxl: "SDXL",
  "sdxl-refiner": "SDXL Refiner",
  sd3: "SD3",
  flux: "Flux",
  vae: "VAE",
  unknown: "Unknown",
};

/** Transformer (non-UNet) families: one probe key each, with or without a container prefix. */
export const TRANSFORMER_SIGNATURES: readonly { readonly architecture: ArchitectureId; readonly probe: RegExp }[] = [
  { architecture: "flux", probe: /(^|\.)double_blocks\.0\.img_attn\.qkv\.weight$/ },
  { architecture: "sd3", probe: /(^|\.)joint_blocks\.0\.context_block\.attn\.qkv\.weight$/ },
];

/**
 * UNet families by the cross-attention context width, read from any `attn2.to_k.weight`
 * shape[1]: this is what the UNet was trained against, whatever text encoder is bundled.
 */
export const UNET_CONTEXT_DIM_PROBE = /(^|\.)attn2\.to_k\.weight$/;
export const UNET_CONTEXT_DIMS: readonly { readonly contextDim: number; readonly architecture: ArchitectureId }[] = [
  { contextDim: 768, architecture: "sd1" },
  { contextDim: 1024, architecture: "sd2" },
  { contextDim: 2048, architecture: "sdxl" },
  { contextDim: 1280, architecture: "sdxl-refiner" },
];

/** Text-encoder probes, used when a file has no UNet (a text-encoder-only or partial file). */
export const TEXT_ENCODER_SIGNATURES: readonly { readonly architecture: ArchitectureId; readonly probe: RegExp; readonly dim1?: number }[] = [
  { architecture: "sdxl", probe: /^conditioner\.embedders\.1\.model\.ln_final\.weight$/ },
  { architecture: "sdxl", probe: /^te2\.text_model\.final_layer_norm\.weight$/ },
  { architecture: "sdxl-refiner", probe: /^conditioner\.embedders\.0\.model\.ln_final\.weight$/ },
  { architecture: "sd2", probe: /^cond_stage_model\.model\.token_embedding\.weight$/ },
  { architecture: "sd1", probe: /^cond_stage_model\.transformer\.(text_model\.)?embeddings\.token_embedding\.weight$/ },
  { architecture: "sd1", probe: /^te\.text_model\.embeddings\.token_embedding\.weight$/, dim1: 768 },
  { architecture: "sd2", probe: /^te\.text_model\.embeddings\.token_embedding\.weight$/, dim1: 1024 },
];

/** The UNet's first convolution: its input channels tell inpainting (9) and pix2pix (8) apart. */
export const UNET_CONV_IN_PROBE = /^(model\.diffusion_model\.|unet\.)?(input_blocks\.0\.0|conv_in)\.weight$/;
export const CONV_IN_VARIANTS: readonly { readonly channels: number; readonly variant: ModelVariant }[] = [
  { channels: 4, variant: "standard" },
  { channels: 9, variant: "inpainting" },
  { channels: 8, variant: "pix2pix" },
];

/** Key layouts, first match wins: every listed prefix must be present among the keys. */
export const KEY_LAYOUTS: readonly { readonly layout: KeyLayout; readonly allOf: readonly RegExp[] }[] = [
  { layout: "comfyui", allOf: [/^model\.diffusion_model\./, /^text_encoders\./] },
  { layout: "flux", allOf: [/^model\.diffusion_model\.double_blocks\./] },
  { layout: "flux", allOf: [/^double_blocks\./] },
  { layout: "sgm", allOf: [/^model\.diffusion_model\./, /^conditioner\./] },
  { layout: "ldm", allOf: [/^model\.diffusion_model\./, /^cond_stage_model\./] },
  { layout: "ldm", allOf: [/^model\.diffusion_model\./] },
  { layout: "kohya", allOf: [/^unet\./] },
  { layout: "unet-ldm", allOf: [/^input_blocks\./, /^output_blocks\./] },
  { layout: "unet-diffusers", allOf: [/^down_blocks\./, /^up_blocks\./] },
];

/**
 * A standalone VAE: every key is an autoencoder key. LDM naming uses `mid.attn_1`/`down.N`,
 * diffusers naming `mid_block`/`down_blocks`.
 */
export const VAE_KEY = /^(encoder|decoder|quant_conv|post_quant_conv)\./;
export const VAE_DIFFUSERS_MARKER = /^(encoder|decoder)\.(mid_block|down_blocks|up_blocks)\./;

/** v-prediction markers: marker tensors (ComfyUI / sgm) and metadata fields (ModelSpec, kohya). */
export const V_PREDICTION_KEYS: readonly string[] = ["v_pred", "edm_vpred.sigma_max"];
export const PREDICTION_METADATA: readonly { readonly field: string; readonly v: RegExp; readonly epsilon?: RegExp }[] = [
  { field: "modelspec.prediction_type", v: /^v(_prediction)?$/i, epsilon: /^epsilon$/i },
  { field: "modelspec.predict_key", v: /^v$/i, epsilon: /^epsilon$/i },
  { field: "ss_v_parameterization", v: /^true$/i, epsilon: /^false$/i },
  { field: "modelspec.architecture", v: /-v$/i },
];

/**
 * SDXL derivatives are structurally plain SDXL; only names tell them apart. Checked in order
 * (NoobAI is trained from Illustrious and its names often say both). Patterns avoid the
 * Python tool's bare substrings `ill` and `nai`, which matched "chillout" and "naive".
 */
export const SDXL_DERIVATIVE_HINTS: readonly { readonly derivative: SdxlDerivative; readonly pattern: RegExp }[] = [
  { derivative: "NoobAI", pattern: /noob/i },
  { derivative: "Pony", pattern: /pony|pdxl/i },
  { derivative: "Illustrious", pattern: /illustrious|(^|[^a-z])(ilxl|illxl|illus)/i },
];

/** Metadata fields that may carry a model's name or base model, read for derivative hints. */
export const NAME_METADATA_FIELDS: readonly string[] = ["modelspec.title", "ss_sd_model_name", "ss_base_model_version", "modelspec.description", "ss_output_name"];
