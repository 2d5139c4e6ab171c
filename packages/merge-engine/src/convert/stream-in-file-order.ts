import { open } from "node:fs/promises";
import { readFully } from "@stmerge/core-tensors";
import type { StateDictSource } from "./open-state-dict.js";
import { createSha256Stream } from "./sha256-stream.js";

/** A byte range of the input holding the bytes of one or more kept tensors (a torch storage, or one safetensors tensor). */
export interface TensorRegion {
  readonly fileOffset: number;
  readonly byteLength: number;
  readonly names: readonly string[];
}

/** Regions larger than this (and than twice their largest tensor) are not read whole. */
const MAX_REGION_BYTES = 64 << 20;
const GAP_CHUNK = 16 << 20;

/**
 * Groups the kept tensors by the file region their bytes live in, in file order. Returns
 * undefined when a single pass is not a good idea (overlapping regions, or a region, such as a
 * flat storage shared by many tensors, much larger than its tensors).
 */
export function planFileRegions(state: StateDictSource, names: readonly string[]): TensorRegion[] | undefined {
  const byKey = new Map<string, { fileOffset: number; byteLength: number; names: string[]; largest: number }>();
  for (const name of names) {
    const where = state.locate(name);
    if (!where) return undefined;
    let region = byKey.get(where.key);
    if (!region) {
      region = { fileOffset: where.fileOffset, byteLength: where.byteLength, names: [], largest: 0 };
      byKey.set(where.key, region);
    }
    region.names.push(name);
    region.largest = Math.max(region.largest, state.source.get(name)!.byteLength);
  }
  const regions = [...byKey.values()].sort((a, b) => a.fileOffset - b.fileOffset);
  let end = 0;
  for (const r of regions) {
    if (r.fileOffset < end) return undefined;
    if (r.byteLength > MAX_REGION_BYTES && r.byteLength > 2 * r.largest) return undefined;
    end = r.fileOffset + r.byteLength;
  }
  return regions.map(({ fileOffset, byteLength, names: n }) => ({ fileOffset, byteLength, names: n }));
}

export interface FileOrderHandlers {
  /** Called for each region in file order with its bytes; extract, write, then return. */
  onRegion(region: TensorRegion, bytes: Uint8Array): Promise<void>;
  /** Bytes of the input hashed so far, for progress. */
  onHashed?(bytesDone: number, bytesTotal: number): void;
}

/**
 * Reads the input once, front to back: every region whole (the next one is read while the
 * current one is handled), the bytes between regions (zip headers, the pickle, pruned tensors) in
 * chunks. Every byte goes to a SHA-256 worker after use, so hashing the input costs no second
 * read. Returns the input's SHA-256.
 */
export async function streamInFileOrder(path: string, regions: readonly TensorRegion[], handlers: FileOrderHandlers): Promise<string> {
  const handle = await open(path, "r");
  const fileSize = (await handle.stat()).size;
  let hashed = 0;
  const sha = createSha256Stream((n) => {
    hashed += n;
    handlers.onHashed?.(hashed, fileSize);
  });
  const readRegion = async (r: TensorRegion): Promise<Uint8Array> => {
    const bytes = new Uint8Array(r.byteLength);
    await readFully(handle, bytes, 0, r.byteLength, r.fileOffset, path);
    return bytes;
  };
  const hashRange = async (from: number, to: number): Promise<void> => {
    for (let at = from; at < to; at += GAP_CHUNK) {
      const chunk = new Uint8Array(Math.min(GAP_CHUNK, to - at));
      await readFully(handle, chunk, 0, chunk.length, at, path);
      await sha.push(chunk);
    }
  };
  try {
    let cursor = 0;
    let pending = regions[0] ? readRegion(regions[0]) : undefined;
    for (let i = 0; i < regions.length; i++) {
      const region = regions[i]!;
      const bytes = await pending!;
      const next = regions[i + 1];
      pending = next ? readRegion(next) : undefined;
      pending?.catch(() => undefined);
      await hashRange(cursor, region.fileOffset);
      await handlers.onRegion(region, bytes);
      await sha.push(bytes);
      cursor = region.fileOffset + region.byteLength;
    }
    await hashRange(cursor, fileSize);
    return await sha.digest();
  } catch (error) {
    await sha.terminate();
    throw error;
  } finally {
    await handle.close();
  }
}
