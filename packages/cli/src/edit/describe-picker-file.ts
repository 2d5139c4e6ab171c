import { basename } from "node:path";
import { detectArchitecture, detectPrecision, looksLikeLora, openMergeInput } from "@stmerge/merge-engine";
import type { PickerFileInfo } from "./editor-state.js";

/**
 * What a picked file is, from its header (safetensors) or its pickle's structure (legacy
 * checkpoints, read by safe-pickle without running code): a LoRA (merge-engine's LoRA key
 * detection), a VAE (its architecture detection), or a checkpoint with its architecture label and
 * precision. A file that does not open is "unreadable", with the reason.
 */
export async function describePickerFile(path: string): Promise<PickerFileInfo> {
  let source;
  try {
    source = await openMergeInput(path);
  } catch (error) {
    return { kind: "unreadable", label: (error as Error).message };
  }
  try {
    const { descriptors } = source;
    if (looksLikeLora(descriptors)) return { kind: "lora", label: "LoRA" };
    const report = detectArchitecture(descriptors, { filename: basename(path), metadata: source.metadata });
    if (report.architecture === "vae") return { kind: "vae", label: "VAE" };
    return { kind: "checkpoint", label: report.label, precision: detectPrecision(descriptors) };
  } finally {
    await source.close();
  }
}
