import { extname } from "node:path";
import { dtypeToPrecision, isFloatDType, readSafetensorsHeader } from "@stmerge/core-tensors";

/**
 * The precision a safetensors file is stored in: the float dtype holding most bytes ("fp16",
 * "bf16", "fp32", or the dtype name for others such as "F8_E4M3"). Null for other formats or
 * unreadable headers: the cache records what it can and never fails on this.
 */
export async function detectPrecision(path: string): Promise<string | null> {
  if (extname(path).toLowerCase() !== ".safetensors") return null;
  try {
    const header = await readSafetensorsHeader(path);
    const bytes = new Map<string, number>();
    for (const t of header.tensors) if (isFloatDType(t.dtype)) bytes.set(t.dtype, (bytes.get(t.dtype) ?? 0) + t.byteLength);
    let best: string | undefined;
    for (const [dtype, n] of bytes) if (best === undefined || n > (bytes.get(best) ?? 0)) best = dtype;
    if (!best) return null;
    return dtypeToPrecision(best as Parameters<typeof dtypeToPrecision>[0]) ?? best;
  } catch {
    return null;
  }
}
