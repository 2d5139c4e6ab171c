import type { TensorSource } from "@stmerge/core-tensors";
import { openStateDict } from "../convert/open-state-dict.js";

/**
 * Opens a merge input by content, not extension: safetensors directly, legacy torch checkpoints
 * (.ckpt/.pt/.pth/.bin) through safe-pickle without executing anything, using their state dict
 * (`state_dict` unwrapped, DataParallel prefixes stripped). Only headers and pickle structure are
 * read here; tensor bytes are read on demand by the executor.
 */
export async function openMergeInput(path: string): Promise<TensorSource> {
  const opened = await openStateDict(path);
  const { source } = opened;
  return {
    path: source.path,
    descriptors: source.descriptors,
    metadata: source.metadata,
    get: (name) => source.get(name),
    read: (name, into) => source.read(name, into),
    readRange: (name, start, end, into) => source.readRange(name, start, end, into),
    // Where the bytes are the file's own (safetensors), so a merge can hash its inputs from its reads.
    ...(source.fileOffsetOf ? { fileOffsetOf: source.fileOffsetOf.bind(source) } : {}),
    // What the merge reads, so the input's hasher can refuse a path replaced since.
    ...(source.fileIdentity ? { fileIdentity: source.fileIdentity } : {}),
    close: () => opened.close(),
  };
}
