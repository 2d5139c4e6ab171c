import type { TensorDescriptor } from "@stmerge/core-tensors";
import { detectFileFormat } from "../convert/detect-file-format.js";
import { MergeError } from "../merge-error.js";
import type { ArchitectureReport } from "../models/detect-architecture.js";

/** What a file that is not a full checkpoint is, and what to do instead. */
const WHAT: Readonly<Record<string, string>> = { lora: "a LoRA", "textual-inversion": "a textual-inversion embedding", vae: "a standalone VAE", upscaler: "an upscaler" };
const INSTEAD: Readonly<Record<string, string>> = {
  lora: "a LoRA is applied to a checkpoint, not merged with one (`stmerge lora bake`)",
  "textual-inversion": "an embedding is loaded by the UI next to a checkpoint; it cannot be merged",
  vae: "bake a VAE in with the manifest's `vae` field (or `stmerge scan --vae`)",
  upscaler: "an upscaler cannot be merged with a diffusion model",
};

/**
 * Refuses, from headers alone, any merge input that is not a full checkpoint of a known
 * architecture (a LoRA, a VAE, an embedding, an upscaler, an unknown file), naming the file and
 * what it is. Without this a LoRA "merges" by sharing no key and the output is a copy of model 0.
 */
export function checkMergeInputs(inputs: readonly { readonly path: string; readonly descriptors: readonly Pick<TensorDescriptor, "name" | "shape">[] }[], reports: readonly ArchitectureReport[]): void {
  for (const [i, input] of inputs.entries()) {
    const format = detectFileFormat(input.descriptors);
    const report = reports[i]!;
    const known = report.architecture !== "unknown" && report.architecture !== "vae";
    if (format.kind === "sd-checkpoint" && known) continue;
    if (format.kind === "unknown" && known) continue; // e.g. a Flux or SD3 file without a container prefix
    const what = format.kind === "sd-checkpoint" || format.kind === "unknown" ? `${format.kind === "unknown" ? "an unknown model" : "a checkpoint"} of no known architecture (${format.evidence[0] ?? report.evidence[0] ?? "no UNet, transformer or text-encoder keys"})` : WHAT[format.kind]!;
    const instead = INSTEAD[format.kind] ?? "merge takes full SD1.5, SD2, SDXL, SD3 or Flux checkpoints";
    throw new MergeError("MERGE_NOT_A_CHECKPOINT", `${input.path}: is ${what}, not a full checkpoint; ${instead}`, { file: input.path, details: { kind: format.kind } });
  }
}
