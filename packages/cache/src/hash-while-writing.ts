import type { OutputByteTap } from "@stmerge/core-tensors";
import type { Blake3Backend } from "./blake3.js";
import { autoV3Start, HASH_ALGORITHMS, type FileHashes, type HashAlgorithm } from "./hash-algorithms.js";
import { formatHashes, planHashers } from "./hash-file.js";
import { createRangeHasher, type RangeHasher } from "./range-hashers.js";

/** A tap for a file being written that computes its hashes from the bytes passing through. */
export interface HashingTap extends OutputByteTap {
  /** The hashes, or undefined when the tap did not see every byte in order (hash the file instead). */
  result(): FileHashes | undefined;
}

/**
 * Hashes an output while it is written (plug into core-tensors' writer `tap`), the same digests
 * `hashFile` computes by reading, so recording the output in the cache needs no second read.
 * The digests run on the writing thread, in the order the bytes reach the file.
 */
export function createHashingTap(options: { algorithms?: readonly HashAlgorithm[]; blake3?: Blake3Backend | "auto" } = {}): HashingTap {
  const algorithms = options.algorithms ?? HASH_ALGORITHMS;
  let hashers: RangeHasher[] | undefined;
  let size = -1;
  let fed = 0;
  let broken = false;
  return {
    async start(file) {
      size = file.size;
      const specs = planHashers(algorithms, file.size, autoV3Start(file.head.subarray(0, 8), file.size));
      hashers = await Promise.all(specs.map((s) => createRangeHasher(s, options.blake3 ?? "auto")));
    },
    bytes(chunk, offset) {
      if (!hashers || offset !== fed) {
        broken = true;
        return;
      }
      for (const h of hashers) h.feed(chunk, offset);
      fed += chunk.byteLength;
    },
    result() {
      if (!hashers || broken || fed !== size) return undefined;
      const digests = new Map(hashers.map((h) => [h.spec.id, h.digest()] as const));
      return formatHashes(algorithms, digests, size);
    },
  };
}
