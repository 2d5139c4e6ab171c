import { openSafetensors, sniffFile, TensorIoError, type TensorSource } from "@stmerge/core-tensors";
import { openTorchCheckpoint, type CheckpointFormat, type TorchCheckpoint } from "@stmerge/safe-pickle";
import { ConvertError } from "./convert-error.js";
import { findStateDict } from "./find-state-dict.js";
import { stripDataParallelPrefixes } from "./strip-prefixes.js";
import { STATE_DICT_KEYS } from "../models/state-dict-keys.js";

export type ModelFileFormat = CheckpointFormat | "safetensors";

/** A model file's state dict as a `TensorSource`, whichever container it came in. */
export interface StateDictSource {
  readonly source: TensorSource;
  readonly fileFormat: ModelFileFormat;
  /** Wrapper keys followed to reach the state dict (`state_dict`, `params_ema`, ...). */
  readonly wrapperPath: readonly string[];
  /** Non-tensor entries left out of the state dict. */
  readonly skipped: readonly string[];
  /** Keys whose DataParallel `module.` prefix was removed. */
  readonly strippedPrefixes: number;
  /** The opened checkpoint, for torch files. */
  readonly checkpoint: TorchCheckpoint | undefined;
  /**
   * The CRC-32 the file itself records for exactly the bytes `source.read(name)` returns (a zip
   * checkpoint's tensor that is its whole storage); undefined when it records none.
   */
  recordedCrc32(name: string): number | undefined;
  /**
   * Whether `source.readRange` of this tensor reads just that range from the file (a safetensors
   * file's tensor, or a torch tensor that is its whole storage as stored); else it reads the
   * whole tensor for each range, and convert reads it whole once.
   */
  readsRangesInPlace(name: string): boolean;
  close(): Promise<void>;
}

export interface OpenStateDictOptions {
  /** Torch files: let the tensors add up to more than 4x the file (shared storages, expanded views); see safe-pickle's threat model. */
  readonly allowAmplification?: boolean;
}

/** True when the file is a safetensors file (by core-tensors' one sniffer); a missing file or a folder is a typed error. */
export async function looksLikeSafetensors(path: string): Promise<boolean> {
  return (await sniffFile(path)).kind === "safetensors";
}

/**
 * Opens a safetensors file as is, or a torch checkpoint through safe-pickle (never executing
 * anything), then finds its state dict and strips DataParallel prefixes.
 */
export async function openStateDict(path: string, options: OpenStateDictOptions = {}): Promise<StateDictSource> {
  if (await looksLikeSafetensors(path)) {
    const source = await openSafetensors(path);
    return {
      source,
      fileFormat: "safetensors",
      wrapperPath: [],
      skipped: [],
      strippedPrefixes: 0,
      checkpoint: undefined,
      recordedCrc32: () => undefined,
      readsRangesInPlace: () => true,
      close: () => source.close(),
    };
  }
  const checkpoint = await openTorchCheckpoint(path, options.allowAmplification === true ? { allowAmplification: true } : {});
  try {
    const found = findStateDict(checkpoint.root);
    if (found.tensors.length === 0) {
      throw new ConvertError("CONVERT_NO_STATE_DICT", `${path}: no tensors found (looked for ${STATE_DICT_KEYS.join(", ")} and a bare dict)`, { file: path });
    }
    const stripped = stripDataParallelPrefixes(found.tensors.map((t) => t.name));
    const tensors = found.tensors.map((t, i) => ({ name: stripped[i]!.name, tensor: t.tensor }));
    const source = checkpoint.createSource(tensors);
    const byName = new Map(tensors.map((t) => [t.name, t.tensor]));
    const recordedCrc32 = (name: string): number | undefined => {
      const tensor = byName.get(name);
      return tensor ? checkpoint.recordedCrc32Of(tensor) : undefined;
    };
    return {
      source,
      fileFormat: checkpoint.format,
      wrapperPath: found.wrapperPath,
      skipped: found.skipped,
      strippedPrefixes: stripped.filter((s) => s.name !== s.original).length,
      checkpoint,
      recordedCrc32,
      // A recorded CRC-32 means a contiguous tensor in native byte order filling its storage.
      readsRangesInPlace: (name) => recordedCrc32(name) !== undefined,
      close: () => checkpoint.close(),
    };
  } catch (error) {
    await checkpoint.close();
    throw error;
  }
}
