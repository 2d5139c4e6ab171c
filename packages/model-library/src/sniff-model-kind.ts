import { openFileForRead, readFully } from "@stmerge/core-tensors";
import type { ModelKind } from "./model-kinds.js";

/** Largest safetensors header the sniff reads (an SDXL checkpoint's is about 250 KB). */
export const SNIFF_MAX_HEADER_BYTES = 16 * 1024 * 1024;

/**
 * The kind a safetensors file's tensor names suggest, from a small key heuristic (not
 * merge-engine's architecture detection, which this package may not depend on). Undefined
 * when the names say nothing we know.
 */
export function kindFromTensorNames(names: readonly string[]): ModelKind | undefined {
  const has = (re: RegExp) => names.some((n) => re.test(n));
  if (has(/^lora_(unet|te\d?)_|\.lora_(down|up|A|B)\.|\.hada_w1_a$|\.lokr_w1$|^lora_transformer_/)) return "lora";
  if (has(/^(control_model\.|controlnet_|input_hint_block\.)|^control_model/)) return "controlnet";
  const unet = has(/^model\.diffusion_model\./);
  if (unet && has(/^(first_stage_model\.|cond_stage_model\.|conditioner\.)/)) return "checkpoint";
  if (unet || has(/^(double_blocks|single_blocks|joint_blocks)\./)) return "diffusion-model";
  if (has(/^(encoder|decoder)\.(down|up|mid)/) && has(/quant_conv\./)) return "vae";
  if (names.length > 0 && names.length <= 4 && names.every((n) => /^(clip_[lg]|emb_params|string_to_param\..*|\*)$/.test(n))) return "embedding";
  if (has(/^(conv_first|RRDB_trunk|body\.\d+\.rdb|model\.0\.weight$)/)) return "upscaler";
  if (has(/^vision_model\./)) return "clip-vision";
  if (has(/^(text_model\.|encoder\.block\.\d+\.|shared\.weight$|text_projection)/)) return "text-encoder";
  return undefined;
}

/**
 * Reads a safetensors file's header (8 bytes + the JSON, at most `SNIFF_MAX_HEADER_BYTES`) and
 * guesses its kind. Not a safetensors file, or an unreadable one: undefined (the folder decides).
 */
export async function sniffModelKind(path: string): Promise<ModelKind | undefined> {
  let opened;
  try {
    opened = await openFileForRead(path);
  } catch {
    return undefined;
  }
  const { handle, stats } = opened;
  try {
    if (stats.size < 10) return undefined;
    const prefix = new Uint8Array(8);
    await readFully(handle, prefix, 0, 8, 0, path);
    const n = Number(new DataView(prefix.buffer).getBigUint64(0, true));
    if (n < 2 || n > SNIFF_MAX_HEADER_BYTES || 8 + n > stats.size) return undefined;
    const bytes = new Uint8Array(n);
    await readFully(handle, bytes, 0, n, 8, path);
    if (bytes[0] !== 0x7b) return undefined;
    let header: unknown;
    try {
      header = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return undefined;
    }
    if (typeof header !== "object" || header === null || Array.isArray(header)) return undefined;
    return kindFromTensorNames(Object.keys(header).filter((k) => k !== "__metadata__"));
  } catch {
    return undefined;
  } finally {
    await handle.close().catch(() => undefined);
  }
}
