import { createHash } from "node:crypto";
import { crc32, crc32Implementation } from "@stmerge/core-tensors";
import { createBlake3Hasher, type Blake3Backend, type IncrementalHasher } from "./blake3.js";

/** The primitive digests a file hash is built from; AutoV1/V2/V3 are SHA-256 over a byte range. */
export type RangeHasherKind = "sha256" | "crc32" | "blake3";

/** One digest over the file bytes [start, end). */
export interface RangeHasherSpec {
  readonly id: string;
  readonly kind: RangeHasherKind;
  readonly start: number;
  readonly end: number;
}

/** Rough single-core cost in seconds per GiB, used to spread hashers over worker lanes. */
export function rangeHasherCost(spec: RangeHasherSpec, blake3: Blake3Backend): number {
  const gib = (spec.end - spec.start) / 2 ** 30;
  const perGib = spec.kind === "sha256" ? 0.6 : spec.kind === "crc32" ? (crc32Implementation() === "native" ? 0.06 : 0.22) : blake3 === "native" ? 0.25 : 1.5;
  return gib * perGib;
}

/** A running digest bound to its byte range: feed any chunk, it takes the part inside its range. */
export interface RangeHasher {
  readonly spec: RangeHasherSpec;
  /** Hashes the overlap of `chunk` (which starts at file offset `offset`) with this hasher's range. */
  feed(chunk: Uint8Array, offset: number): void;
  /** Lowercase hex; for CRC-32 the zlib-order value as 8 hex. */
  digest(): string;
}

export async function createRangeHasher(spec: RangeHasherSpec, blake3: Blake3Backend | "auto" = "auto"): Promise<RangeHasher> {
  let inner: IncrementalHasher;
  if (spec.kind === "sha256") {
    const h = createHash("sha256");
    inner = { update: (b) => void h.update(b), digestHex: () => h.digest("hex") };
  } else if (spec.kind === "crc32") {
    // zlib's CRC-32, carried chunk to chunk (core-tensors' crc32: @node-rs/crc32 where it loads, else zlib's or a table).
    let crc = 0;
    inner = { update: (b) => void (crc = crc32(b, crc)), digestHex: () => crc.toString(16).padStart(8, "0") };
  } else {
    inner = await createBlake3Hasher(blake3);
  }
  return {
    spec,
    feed(chunk, offset) {
      const from = Math.max(spec.start, offset);
      const to = Math.min(spec.end, offset + chunk.byteLength);
      if (to > from) inner.update(chunk.subarray(from - offset, to - offset));
    },
    digest: () => inner.digestHex(),
  };
}
