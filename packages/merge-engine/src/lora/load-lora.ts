import { decodeToF32, openSafetensors, shapeElementCount, type TensorSource } from "@stmerge/core-tensors";
import { basename } from "node:path";
import { sha256File } from "../convert/hash-file.js";
import { MergeError } from "../merge-error.js";
import type { LoraTensor, PeftAlpha } from "./lora-delta.js";
import { detectLoraModules, type LoraFileLayout, type LoraModule, type LoraRole } from "./lora-formats.js";

/** LoRA files are held in memory whole (they are small); a larger file is refused, not swapped in. */
export const MAX_LORA_FILE_BYTES = 4 * 1024 ** 3;

/** A LoRA file read into memory: its modules, F32 tensors, identity and PEFT alpha if recorded. */
export interface LoadedLora extends LoraFileLayout {
  readonly path: string;
  readonly name: string;
  readonly sha256: string;
  readonly metadata: Readonly<Record<string, string>>;
  readonly tensors: ReadonlyMap<string, LoraTensor>;
  readonly peft: PeftAlpha | undefined;
}

/** PEFT's config from diffusers' `lora_adapter_metadata` (lora_alpha, r, use_rslora), if present and sane. */
export function peftAlphaFromMetadata(metadata: Readonly<Record<string, string>>): PeftAlpha | undefined {
  const text = metadata.lora_adapter_metadata;
  if (!text) return undefined;
  try {
    const v = JSON.parse(text) as Record<string, unknown>;
    const loraAlpha = Number(v.lora_alpha);
    const r = Number(v.r);
    if (!Number.isFinite(loraAlpha) || !Number.isFinite(r) || r <= 0) return undefined;
    return { loraAlpha, r, useRslora: v.use_rslora === true };
  } catch {
    return undefined;
  }
}

/** Reads a LoRA (safetensors) into memory and groups its keys into modules. */
export async function loadLora(path: string, openSource: (path: string) => Promise<TensorSource> = openSafetensors): Promise<LoadedLora> {
  const source = await openSource(path);
  try {
    const total = source.descriptors.reduce((s, d) => s + d.byteLength, 0);
    if (total > MAX_LORA_FILE_BYTES) throw new MergeError("LORA_TOO_LARGE", `${path}: ${total} bytes of tensors is more than a LoRA may hold (MAX_LORA_FILE_BYTES ${MAX_LORA_FILE_BYTES})`, { file: path });
    const layout = detectLoraModules(source.descriptors);
    if (layout.modules.length === 0) throw new MergeError("LORA_NO_MODULES", `${path}: no LoRA modules (no lora_down/lora_up, lora_A/lora_B, hada_*, lokr_* or diff keys)`, { file: path });
    const tensors = new Map<string, LoraTensor>();
    for (const d of source.descriptors) {
      if (!layout.modules.length) break;
      const bytes = await source.read(d.name);
      const values = decodeToF32(bytes, d.dtype);
      if (values.length !== shapeElementCount(d.shape)) throw new MergeError("LORA_BAD_TENSOR", `${path}: tensor ${d.name} has ${values.length} values for shape ${JSON.stringify(d.shape)}`, { file: path });
      tensors.set(d.name, { values, shape: d.shape });
    }
    return { ...layout, path, name: basename(path), sha256: await sha256File(path), metadata: source.metadata, tensors, peft: peftAlphaFromMetadata(source.metadata) };
  } finally {
    await source.close();
  }
}

/** The tensor of one role of a module, from a loaded LoRA. */
export function loraTensorOf(lora: Pick<LoadedLora, "tensors">, module: LoraModule, role: LoraRole): LoraTensor | undefined {
  const key = module.parts[role];
  return key === undefined ? undefined : lora.tensors.get(key);
}
