import type { OutputByteTap } from "@stmerge/core-tensors";
import { blake3Backend, type Blake3Backend } from "./blake3.js";
import { autoV3Start, HASH_ALGORITHMS, type FileHashes, type HashAlgorithm } from "./hash-algorithms.js";
import { formatHashes, lanesSupported, planHashers, resolveThreads } from "./hash-file.js";
import { assignLanes, HASH_CHUNK_BYTES, LaneFeeder, startHashLanes, type HashLanes } from "./hash-lanes.js";
import { createRangeHasher, type RangeHasher } from "./range-hashers.js";

/** A tap for a file being written that computes its hashes from the bytes passing through. */
export interface HashingTap extends OutputByteTap {
  /** The hashes, or undefined when the tap did not see every byte in order (hash the file instead). */
  result(): Promise<FileHashes | undefined>;
  /** Stops the worker threads (call when the write fails; `result` closes them itself). */
  close(): Promise<void>;
}

const SLOTS = 3;

/**
 * Hashes an output while it is written (plug into core-tensors' writer `tap`), the same digests
 * `hashFile` computes by reading, so recording the output in the cache needs no second read.
 * Large files are hashed on the same worker lanes `hashFile` uses, small ones on this thread. A
 * chunk in shared memory (a merge's kernel arena, convert's read buffers) is hashed where it lies
 * and the writer waits for it; any other is copied into a shared slot, and the writer waits only
 * when every slot is busy.
 */
export function createHashingTap(options: { algorithms?: readonly HashAlgorithm[]; blake3?: Blake3Backend | "auto"; threads?: "auto" | number } = {}): HashingTap {
  const algorithms = options.algorithms ?? HASH_ALGORITHMS;
  const backend = blake3Backend(options.blake3 ?? "auto");
  let hashers: RangeHasher[] | undefined;
  let lanes: HashLanes | undefined;
  let feeder: LaneFeeder | undefined;
  let size = -1;
  let fed = 0;
  let broken = false;
  // Chunks are taken one after another, in the order they were offered.
  let chain: Promise<void> = Promise.resolve();

  const take = async (chunk: Uint8Array, offset: number): Promise<void> => {
    if ((!hashers && !lanes) || broken || offset !== fed) {
      broken = true;
      return;
    }
    fed += chunk.byteLength;
    if (feeder) await feeder.share(chunk, offset);
    else for (const h of hashers!) h.feed(chunk, offset);
  };

  const close = async (): Promise<void> => {
    const l = lanes;
    lanes = undefined;
    if (l) await l.close();
  };

  return {
    async start(file) {
      size = file.size;
      const specs = planHashers(algorithms, file.size, autoV3Start(file.head.subarray(0, 8), file.size));
      const threads = lanesSupported(specs, backend) ? resolveThreads(options.threads, specs, file.size) : 1;
      if (threads > 1) {
        lanes = await startHashLanes("<output being written>", assignLanes(specs, threads, backend), SLOTS, HASH_CHUNK_BYTES, backend);
        feeder = new LaneFeeder(lanes);
      } else hashers = await Promise.all(specs.map((s) => createRangeHasher(s, backend)));
    },
    bytes(chunk, offset) {
      const taken = chain.then(() => take(chunk, offset));
      chain = taken.catch(() => undefined);
      return taken;
    },
    async result() {
      await chain;
      try {
        if (broken || fed !== size) return undefined;
        if (lanes && feeder) {
          await feeder.drain();
          if (feeder.failure) return undefined;
          return formatHashes(algorithms, await lanes.finish(), size);
        }
        if (!hashers) return undefined;
        return formatHashes(algorithms, new Map(hashers.map((h) => [h.spec.id, h.digest()] as const)), size);
      } finally {
        await close();
      }
    },
    close,
  };
}
