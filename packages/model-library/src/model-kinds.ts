/** What a model file is for, in one vocabulary across A1111/Forge, ComfyUI, Stability Matrix, SwarmUI, Fooocus and InvokeAI. */
export type ModelKind =
  | "checkpoint"
  | "diffusion-model"
  | "vae"
  | "lora"
  | "embedding"
  | "hypernetwork"
  | "upscaler"
  | "controlnet"
  | "text-encoder"
  | "clip-vision"
  | "other";

export const MODEL_KINDS: readonly ModelKind[] = ["checkpoint", "diffusion-model", "vae", "lora", "embedding", "hypernetwork", "upscaler", "controlnet", "text-encoder", "clip-vision", "other"];

/** File extensions the UIs list as models (ComfyUI's set; A1111 uses a subset). */
export const LIBRARY_MODEL_EXTENSIONS: readonly string[] = [".safetensors", ".sft", ".ckpt", ".pt", ".pt2", ".pth", ".bin", ".pkl", ".gguf"];

/** Names of files that are still being written; they are neither hashed nor replaced. */
export const PARTIAL_DOWNLOAD_EXTENSIONS: readonly string[] = [".part", ".tmp", ".crdownload", ".download", ".partial"];

// Folder names (lower case) → kind, from A1111 (modules/cmd_args.py), ComfyUI (folder_paths.py)
// and Stability Matrix (SharedFolderType). SwarmUI's
// (Stable-Diffusion, Lora, VAE, Embeddings, controlnet, clip, clip_vision) and Fooocus's (checkpoints,
// loras, embeddings, vae_approx, upscale_models, controlnet, clip_vision) are among them.
const FOLDER_KINDS: Readonly<Record<string, ModelKind>> = {
  "stable-diffusion": "checkpoint",
  stablediffusion: "checkpoint",
  checkpoints: "checkpoint",
  unet: "diffusion-model",
  diffusion_models: "diffusion-model",
  diffusionmodels: "diffusion-model",
  vae: "vae",
  "vae-approx": "vae",
  vae_approx: "vae",
  approxvae: "vae",
  lora: "lora",
  loras: "lora",
  lycoris: "lora",
  embeddings: "embedding",
  textualinversion: "embedding",
  hypernetworks: "hypernetwork",
  hypernetwork: "hypernetwork",
  esrgan: "upscaler",
  realesrgan: "upscaler",
  bsrgan: "upscaler",
  swinir: "upscaler",
  scunet: "upscaler",
  ldsr: "upscaler",
  upscale_models: "upscaler",
  controlnet: "controlnet",
  t2i_adapter: "controlnet",
  t2iadapter: "controlnet",
  text_encoders: "text-encoder",
  text_encoder: "text-encoder",
  textencoders: "text-encoder",
  clip: "text-encoder",
  clip_vision: "clip-vision",
  clipvision: "clip-vision",
};

/**
 * InvokeAI installs a model under `models/<base>/<type>/<name>`: base and type are the values of
 * its `BaseModelType` and `ModelType` enums (invokeai/backend/model_manager/taxonomy.py).
 */
export const INVOKEAI_BASES: ReadonlySet<string> = new Set(["any", "sd-1", "sd-2", "sd-3", "sdxl", "sdxl-refiner", "flux", "cogview4"]);
const INVOKEAI_TYPE_KINDS: Readonly<Record<string, ModelKind>> = {
  main: "checkpoint",
  vae: "vae",
  lora: "lora",
  control_lora: "controlnet",
  controlnet: "controlnet",
  t2i_adapter: "controlnet",
  ip_adapter: "controlnet",
  embedding: "embedding",
  clip_vision: "clip-vision",
  clip_embed: "text-encoder",
  t5_encoder: "text-encoder",
  spandrel_image_to_image: "upscaler",
};
/** InvokeAI's type folder names (`main`, `lora`, …) that `kindForFolders` knows under a base folder. */
export const INVOKEAI_TYPES: ReadonlySet<string> = new Set(Object.keys(INVOKEAI_TYPE_KINDS));

/**
 * The kind a folder path implies: the nearest enclosing folder with a known name wins
 * (`models/Lora/styles/x.safetensors` is a LoRA). InvokeAI's type folders count only right under
 * one of its base folders (`models/sdxl/main/…`; a folder called `main` elsewhere means nothing).
 * `dirs` are the folder names from the root down to the file's folder.
 */
export function kindForFolders(dirs: readonly string[]): ModelKind | undefined {
  for (let i = dirs.length - 1; i >= 0; i--) {
    const name = dirs[i]!.toLowerCase();
    if (i > 0 && INVOKEAI_BASES.has(dirs[i - 1]!.toLowerCase())) {
      const invoke = INVOKEAI_TYPE_KINDS[name];
      if (invoke) return invoke;
    }
    const kind = FOLDER_KINDS[name];
    if (kind) return kind;
  }
  return undefined;
}
