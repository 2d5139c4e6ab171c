import type { TensorDescriptor } from "@stmerge/core-tensors";
import { VAE_KEY as BARE_VAE_KEY } from "../models/architecture-signatures.js";
import { detectArchitecture, type ArchitectureReport } from "../models/detect-architecture.js";

export type FileFormatKind = "sd-checkpoint" | "vae" | "lora" | "textual-inversion" | "upscaler" | "unknown";

export interface FileFormatReport {
  readonly kind: FileFormatKind;
  /** The architecture label for SD checkpoints ("SD1.5", "SDXL", the same words as scan and merge), else "VAE", "LoRA", ... */
  readonly label: string;
  /** For SD checkpoints (and VAEs): what the architecture detector found. */
  readonly architecture: ArchitectureReport | undefined;
  readonly evidence: readonly string[];
}

type Descriptor = Pick<TensorDescriptor, "name" | "shape">;

const LORA_KEY = /(^|[._])(lora_(down|up|A|B)|lora\.(down|up)|hada_w[12]_[ab]|lokr_w[12]|oft_blocks|dora_scale)([._]|$)|^lora_(unet|te\d?)_/;
const SD_KEY = /^(model\.diffusion_model\.|conditioner\.embedders\.|cond_stage_model\.)/;
// A VAE key (models' table), bare or under a checkpoint's first_stage_model.
const VAE_KEY = new RegExp(`^(first_stage_model\\.)?${BARE_VAE_KEY.source.slice(1)}`);
const UPSCALER_KEY = /^(conv_first|conv_body|conv_up[12]|conv_hr|conv_last|body\.\d+\.rdb\d|model\.\d+\.(weight|bias|sub\.))|^(upconv\d|HRconv)\./;
const TI_KEY = /^(emb_params|clip_[lg]|\*|string_to_param\.\*)$/;

/**
 * Decides what kind of model a state dict holds from its keys and shapes (the wrapper key it
 * came from is a hint: `string_to_param` means textual inversion, `params_ema` an upscaler).
 */
export function detectFileFormat(descriptors: readonly Descriptor[], hints: { readonly wrapperPath?: readonly string[] } = {}): FileFormatReport {
  const names = descriptors.map((d) => d.name);
  const count = (pattern: RegExp): number => names.filter((n) => pattern.test(n)).length;
  const wrapper = hints.wrapperPath ?? [];
  if (names.length === 0) return { kind: "unknown", label: "empty", architecture: undefined, evidence: ["no tensors"] };
  const tiShape = descriptors.every((d) => d.shape.length === 2 && [768, 1024, 1280].includes(d.shape[1]!));
  if (wrapper.includes("string_to_param") || (names.length <= 2 && names.every((n) => TI_KEY.test(n)) && tiShape)) {
    return { kind: "textual-inversion", label: "textual inversion", architecture: undefined, evidence: [wrapper.includes("string_to_param") ? "string_to_param" : `embedding keys ${names.join(", ")}`] };
  }
  const lora = count(LORA_KEY);
  if (lora > 0 && lora >= names.length / 3) return { kind: "lora", label: "LoRA", architecture: undefined, evidence: [`${lora} LoRA keys`] };
  const sd = count(SD_KEY);
  if (sd > 0) {
    const architecture = detectArchitecture(descriptors);
    const label = architecture.label;
    return { kind: "sd-checkpoint", label, architecture, evidence: [`${sd} model.diffusion_model/cond_stage_model/conditioner keys`, ...architecture.evidence] };
  }
  const vae = count(VAE_KEY);
  if (vae >= names.length * 0.9 && names.some((n) => /decoder\./.test(n))) {
    return { kind: "vae", label: "VAE", architecture: detectArchitecture(descriptors), evidence: [`${vae} encoder/decoder keys`] };
  }
  const upscaler = count(UPSCALER_KEY);
  if (wrapper.includes("params_ema") || wrapper.includes("params") || upscaler >= Math.max(2, names.length / 2)) {
    return { kind: "upscaler", label: "upscaler", architecture: undefined, evidence: [wrapper.length ? `weights under ${wrapper.join(".")}` : `${upscaler} ESRGAN-style keys`] };
  }
  return { kind: "unknown", label: "unknown model", architecture: undefined, evidence: [] };
}
