import { shouldPruneKey } from "../models/key-rules.js";
import type { FileFormatKind } from "./detect-file-format.js";

export interface PrunePlan {
  readonly kept: readonly string[];
  readonly pruned: readonly string[];
}

/**
 * Adaptive pruning for convert: SD checkpoints keep their model components (UNet, VAE, text
 * encoders, prediction markers) and lose EMA copies, noise-schedule buffers and training state,
 * by the checkpoint rules in models/key-rules.ts; every other format keeps every key.
 */
export function isPrunableKey(name: string, kind: FileFormatKind): boolean {
  return kind === "sd-checkpoint" && shouldPruneKey(name, "ldm");
}

export function planPruning(names: readonly string[], kind: FileFormatKind, enabled: boolean): PrunePlan {
  if (!enabled) return { kept: [...names], pruned: [] };
  const kept: string[] = [];
  const pruned: string[] = [];
  for (const name of names) (isPrunableKey(name, kind) ? pruned : kept).push(name);
  return { kept, pruned };
}
