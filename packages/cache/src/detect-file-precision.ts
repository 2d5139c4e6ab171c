import { extname } from "node:path";
import { dominantFloatDType, dtypeToPrecision, readSafetensorsHeader } from "@stmerge/core-tensors";

/**
 * The precision a safetensors file is stored in: the float dtype holding most bytes ("fp16",
 * "bf16", "fp32", or the dtype name for others such as "F8_E4M3"). Null for other formats or
 * unreadable headers: the cache records what it can and never fails on this.
 */
export async function detectFilePrecision(path: string): Promise<string | null> {
  if (extname(path).toLowerCase() !== ".safetensors") return null;
  try {
    const dtype = dominantFloatDType((await readSafetensorsHeader(path)).tensors);
    return dtype ? (dtypeToPrecision(dtype) ?? dtype) : null;
  } catch {
    return null;
  }
}
