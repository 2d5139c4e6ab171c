import { createHash } from "node:crypto";
import type { FileHandle } from "node:fs/promises";
import { readFully } from "@stmerge/core-tensors";

/** Bytes of each sampled block. */
export const PARTIAL_BLOCK_BYTES = 16 * 1024;
/** Files up to this size are read whole: the "partial" hash is then their full SHA-256. */
export const WHOLE_FILE_MAX_BYTES = 4 * PARTIAL_BLOCK_BYTES;

export interface PartialHash {
  readonly hash: string;
  /** True when the whole file was read, so `hash` is its SHA-256. */
  readonly whole: boolean;
  readonly bytesRead: number;
}

/**
 * Where the sampled blocks start: three inside the file (at 1/4, 1/2, 3/4, 4 KiB aligned) and the
 * tail. Never the head: same-architecture safetensors files share their JSON header byte for
 * byte, so the first blocks tell nothing.
 */
export function partialBlockOffsets(size: number): number[] {
  if (size <= WHOLE_FILE_MAX_BYTES) return [0];
  const align = (n: number) => Math.floor(n / 4096) * 4096;
  return [align(size / 4), align(size / 2), align((3 * size) / 4), size - PARTIAL_BLOCK_BYTES];
}

/** Hash of the sampled blocks of an open file of `size` bytes (the whole file when it is small). */
export async function partialHash(handle: FileHandle, size: number, file: string): Promise<PartialHash> {
  const hash = createHash("sha256");
  if (size <= WHOLE_FILE_MAX_BYTES) {
    const bytes = new Uint8Array(size);
    await readFully(handle, bytes, 0, size, 0, file);
    hash.update(bytes);
    return { hash: hash.digest("hex"), whole: true, bytesRead: size };
  }
  const block = new Uint8Array(PARTIAL_BLOCK_BYTES);
  for (const offset of partialBlockOffsets(size)) {
    await readFully(handle, block, 0, PARTIAL_BLOCK_BYTES, offset, file);
    hash.update(block);
  }
  return { hash: hash.digest("hex"), whole: false, bytesRead: 4 * PARTIAL_BLOCK_BYTES };
}
