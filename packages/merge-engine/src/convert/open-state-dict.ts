import { open } from "node:fs/promises";
import { openSafetensors, TensorIoError, type TensorSource } from "@stmerge/core-tensors";
import { openTorchCheckpoint, type CheckpointFormat, type TorchCheckpoint } from "@stmerge/safe-pickle";
import { ConvertError } from "./convert-error.js";
import { findStateDict } from "./find-state-dict.js";
import { stripDataParallelPrefixes } from "./strip-prefixes.js";

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
  /** Where a tensor's bytes lie in the file: the region (a torch storage, or the tensor itself) and its key. */
  locate(name: string): { readonly key: string; readonly fileOffset: number; readonly byteLength: number } | undefined;
  /** A tensor's contiguous bytes out of its whole region (as located by `locate`) in memory. */
  extract(name: string, regionBytes: Uint8Array): Uint8Array;
  /** The opened checkpoint, for torch files. */
  readonly checkpoint: TorchCheckpoint | undefined;
  close(): Promise<void>;
}

/** True when the file starts like a safetensors file (u64 header length, then `{`). */
export async function looksLikeSafetensors(path: string): Promise<boolean> {
  let handle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new TensorIoError(e.code === "ENOENT" ? "FILE_NOT_FOUND" : "FILE_UNREADABLE", `${path}: ${e.code === "ENOENT" ? "no such file" : (e.code ?? e.message)}`, { file: path, cause: error });
  }
  try {
    const head = new Uint8Array(9);
    const { bytesRead } = await handle.read(head, 0, 9, 0);
    if (bytesRead < 9 || head[8] !== 0x7b) return false;
    const length = new DataView(head.buffer).getBigUint64(0, true);
    return length > 1n && length < 100_000_000n;
  } finally {
    await handle.close();
  }
}

/**
 * Opens a safetensors file as is, or a torch checkpoint through safe-pickle (never executing
 * anything), then finds its state dict and strips DataParallel prefixes.
 */
export async function openStateDict(path: string): Promise<StateDictSource> {
  if (await looksLikeSafetensors(path)) {
    const source = await openSafetensors(path);
    return {
      source,
      fileFormat: "safetensors",
      wrapperPath: [],
      skipped: [],
      strippedPrefixes: 0,
      locate: (name) => {
        const d = source.get(name);
        return d && { key: `tensor:${name}`, fileOffset: source.fileOffsetOf(name), byteLength: d.byteLength };
      },
      extract: (_name, regionBytes) => regionBytes,
      checkpoint: undefined,
      close: () => source.close(),
    };
  }
  const checkpoint = await openTorchCheckpoint(path);
  try {
    const found = findStateDict(checkpoint.root);
    if (found.tensors.length === 0) {
      throw new ConvertError("CONVERT_NO_STATE_DICT", `${path}: no tensors found (looked for ${["state_dict", "params_ema", "params", "model", "module", "string_to_param"].join(", ")} and a bare dict)`, { file: path });
    }
    const stripped = stripDataParallelPrefixes(found.tensors.map((t) => t.name));
    const tensors = found.tensors.map((t, i) => ({ name: stripped[i]!.name, tensor: t.tensor }));
    const source = checkpoint.createSource(tensors);
    const byName = new Map(tensors.map((t) => [t.name, t.tensor]));
    const tensorOf = (name: string) => {
      const t = byName.get(name);
      if (!t) throw new ConvertError("TENSOR_NOT_FOUND", `${path}: no tensor named ${JSON.stringify(name)}`, { file: path });
      return t;
    };
    return {
      source,
      fileFormat: checkpoint.format,
      wrapperPath: found.wrapperPath,
      skipped: found.skipped,
      strippedPrefixes: stripped.filter((s) => s.name !== s.original).length,
      locate: (name) => {
        const t = byName.get(name);
        if (!t) return undefined;
        const { fileOffset, byteLength } = checkpoint.storageLocationOf(t);
        return { key: `storage:${t.storage.key}`, fileOffset, byteLength };
      },
      extract: (name, regionBytes) => checkpoint.extractTensor(tensorOf(name), regionBytes),
      checkpoint,
      close: () => checkpoint.close(),
    };
  } catch (error) {
    await checkpoint.close();
    throw error;
  }
}
