import type { Worker } from "node:worker_threads";
import { crc32Implementation, nativeCrc32ModulePath, startEvalWorker, type Crc32Implementation } from "@stmerge/core-tensors";
import { HashError } from "./hash-algorithms.js";
import { nativeBlake3ModulePath, wasmHashModulePath, type Blake3Backend } from "./blake3.js";
import { rangeHasherCost, type RangeHasherSpec } from "./range-hashers.js";

/**
 * Bytes a lane hands each of its digests at a time, and the size of a read or slot: small enough
 * that a lane's second digest finds the piece its first one just read still in the core's cache.
 * All six hashes of 2.15 GB took 1.89–1.98 s in 4 MiB pieces against 2.37–2.43 s in 16 MiB ones
 * (2-vCPU Xeon, 2026-12-04; 2 and 8 MiB were in between).
 */
export const HASH_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Worker threads that each run some of the digests over chunks the main thread reads into
 * shared buffers, so SHA-256, CRC-32 and BLAKE3 of one read proceed side by side on several cores.
 * The worker is plain CommonJS kept in a string so it runs the same from sources (tests) and
 * from the bundle, without a separate entry file to locate.
 */
const LANE_WORKER_SOURCE = String.raw`
const { parentPort, workerData } = require("node:worker_threads");
const crypto = require("node:crypto");
const zlib = require("node:zlib");
const { slots, hashers, nativeBlake3Path, nativeCrc32Path, wasmPath, pieceBytes } = workerData;
async function make(kind) {
  if (kind === "sha256") {
    const h = crypto.createHash("sha256");
    return { update: (b) => h.update(b), digest: () => h.digest("hex") };
  }
  if (kind === "crc32") {
    if (nativeCrc32Path) {
      const f = require(nativeCrc32Path).crc32;
      let c = 0;
      return { update: (b) => { c = f(b, c) >>> 0; }, digest: () => c.toString(16).padStart(8, "0") };
    }
    if (typeof zlib.crc32 === "function") {
      let c = 0;
      return { update: (b) => { c = zlib.crc32(b, c); }, digest: () => (c >>> 0).toString(16).padStart(8, "0") };
    }
    const h = await require(wasmPath).createCRC32();
    h.init();
    return { update: (b) => h.update(b), digest: () => h.digest("hex") };
  }
  if (nativeBlake3Path) {
    const h = new (require(nativeBlake3Path).Blake3Hasher)();
    return { update: (b) => h.update(b), digest: () => h.digest("hex") };
  }
  const h = await require(wasmPath).createBLAKE3();
  h.init();
  return { update: (b) => h.update(b), digest: () => h.digest("hex") };
}
(async () => {
  const views = slots.map((s) => new Uint8Array(s));
  const hs = [];
  for (const spec of hashers) hs.push({ spec, impl: await make(spec.kind) });
  parentPort.on("message", (m) => {
    try {
      if (m.type === "chunk" || m.type === "shared") {
        // A slot's bytes, or a view of the caller's own shared memory (no copy), at file offset m.offset.
        const view = m.type === "chunk" ? views[m.slot] : new Uint8Array(m.buffer, m.byteOffset, m.length);
        // Piece by piece, every digest in turn: the second finds the piece the first just read in cache.
        for (let p = m.offset, end = m.offset + m.length; p < end; p += pieceBytes) {
          const pieceEnd = Math.min(end, p + pieceBytes);
          for (const { spec, impl } of hs) {
            const from = Math.max(spec.start, p);
            const to = Math.min(spec.end, pieceEnd);
            if (to > from) impl.update(view.subarray(from - m.offset, to - m.offset));
          }
        }
        parentPort.postMessage({ type: "ack", slot: m.slot });
      } else if (m.type === "finish") {
        parentPort.postMessage({ type: "digests", digests: hs.map(({ spec, impl }) => [spec.id, impl.digest()]) });
      }
    } catch (error) {
      parentPort.postMessage({ type: "error", message: String((error && error.message) || error) });
    }
  });
  parentPort.postMessage({ type: "ready" });
})().catch((error) => parentPort.postMessage({ type: "error", message: String((error && error.message) || error) }));
`;

type LaneMessage = { type: "ready" } | { type: "ack"; slot: number } | { type: "digests"; digests: [string, string][] } | { type: "error"; message: string };

/** Splits hashers over at most `laneCount` lanes, heaviest first onto the least loaded lane. */
export function assignLanes(specs: readonly RangeHasherSpec[], laneCount: number, blake3: Blake3Backend): RangeHasherSpec[][] {
  const lanes: { load: number; specs: RangeHasherSpec[] }[] = Array.from({ length: Math.max(1, Math.min(laneCount, specs.length)) }, () => ({ load: 0, specs: [] }));
  const sorted = [...specs].sort((a, b) => rangeHasherCost(b, blake3) - rangeHasherCost(a, blake3));
  for (const spec of sorted) {
    let best = lanes[0]!;
    for (const lane of lanes) if (lane.load < best.load) best = lane;
    best.specs.push(spec);
    best.load += rangeHasherCost(spec, blake3);
  }
  return lanes.filter((l) => l.specs.length > 0).map((l) => l.specs);
}

class Lane {
  readonly #worker: Worker;
  #waiters: { resolve: (m: LaneMessage) => void; reject: (e: Error) => void }[] = [];
  #ackWaiters = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  #failure: Error | undefined;

  constructor(file: string, slots: SharedArrayBuffer[], hashers: RangeHasherSpec[], blake3: Blake3Backend, crc32: Crc32Implementation, pieceBytes: number) {
    const nativeBlake3Path = blake3 === "native" ? nativeBlake3ModulePath() : undefined;
    const nativeCrc32Path = crc32 === "native" ? nativeCrc32ModulePath() : undefined;
    this.#worker = startEvalWorker(LANE_WORKER_SOURCE, { workerData: { slots, hashers, nativeBlake3Path, nativeCrc32Path, wasmPath: wasmHashModulePath(), pieceBytes } });
    this.#worker.on("message", (m: LaneMessage) => {
      if (m.type === "ack") {
        const w = this.#ackWaiters.get(m.slot);
        this.#ackWaiters.delete(m.slot);
        w?.resolve();
      } else if (m.type === "error") this.#fail(new HashError("HASH_WORKER_FAILED", `${file}: hashing worker failed (${m.message})`, { file }));
      else this.#waiters.shift()?.resolve(m);
    });
    this.#worker.on("error", (e) => this.#fail(new HashError("HASH_WORKER_FAILED", `${file}: hashing worker failed (${e.message})`, { file, cause: e })));
    this.#worker.on("exit", () => this.#fail(new HashError("HASH_WORKER_FAILED", `${file}: hashing worker exited early`, { file })));
  }

  #fail(error: Error): void {
    if (this.#failure) return;
    this.#failure = error;
    for (const w of this.#waiters) w.reject(error);
    for (const w of this.#ackWaiters.values()) w.reject(error);
    this.#waiters = [];
    this.#ackWaiters.clear();
  }

  next(): Promise<LaneMessage> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  chunk(slot: number, offset: number, length: number): Promise<void> {
    return this.#post(slot, { type: "chunk", slot, offset, length });
  }

  /** `bytes` (a view of shared memory) hashed where they are; `id` (negative) names its acknowledgement. */
  shared(id: number, bytes: Uint8Array, offset: number): Promise<void> {
    return this.#post(id, { type: "shared", slot: id, buffer: bytes.buffer, byteOffset: bytes.byteOffset, length: bytes.byteLength, offset });
  }

  #post(ack: number, message: object): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const done = new Promise<void>((resolve, reject) => this.#ackWaiters.set(ack, { resolve, reject }));
    this.#worker.postMessage(message);
    return done;
  }

  finish(): void {
    this.#worker.postMessage({ type: "finish" });
  }

  async close(): Promise<void> {
    this.#failure ??= new Error("closed");
    await this.#worker.terminate();
  }
}

/** A set of worker lanes sharing `slotCount` buffers of `slotSize` bytes. */
export interface HashLanes {
  readonly buffers: Uint8Array[];
  /** Hands buffer `slot` (holding file bytes from `offset`) to every lane; resolves when all are done with it. */
  feed(slot: number, offset: number, length: number): Promise<void>;
  /** Hands every lane a view of shared memory holding file bytes from `offset`, read in place; resolves when all are done with it. */
  feedShared(bytes: Uint8Array, offset: number): Promise<void>;
  /** Digest hex by hasher id, after every fed chunk is done. */
  finish(): Promise<Map<string, string>>;
  close(): Promise<void>;
}

/**
 * `crc32`: "native" (the default where core-tensors found @node-rs/crc32) has the lanes load it;
 * anything else has them use zlib's (hash-wasm's before Node 20.15). `pieceBytes`: see HASH_CHUNK_BYTES.
 */
export async function startHashLanes(
  file: string,
  lanesSpecs: RangeHasherSpec[][],
  slotCount: number,
  slotSize: number,
  blake3: Blake3Backend,
  crc32: Crc32Implementation = crc32Implementation(),
  pieceBytes = HASH_CHUNK_BYTES,
): Promise<HashLanes> {
  const slots = Array.from({ length: slotCount }, () => new SharedArrayBuffer(slotSize));
  const lanes = lanesSpecs.map((specs) => new Lane(file, slots, specs, blake3, crc32, pieceBytes));
  // Shared chunks' acknowledgements are numbered −1, −2, … (slots are 0 and up).
  let sharedChunks = 0;
  const close = async (): Promise<void> => {
    await Promise.all(lanes.map((l) => l.close()));
  };
  try {
    const ready = await Promise.all(lanes.map((l) => l.next()));
    if (ready.some((m) => m.type !== "ready")) throw new HashError("HASH_WORKER_FAILED", `${file}: hashing worker did not start`, { file });
  } catch (error) {
    await close();
    throw error;
  }
  return {
    buffers: slots.map((s) => new Uint8Array(s)),
    feed: async (slot, offset, length) => {
      await Promise.all(lanes.map((l) => l.chunk(slot, offset, length)));
    },
    feedShared: async (bytes, offset) => {
      const id = -++sharedChunks;
      await Promise.all(lanes.map((l) => l.shared(id, bytes, offset)));
    },
    finish: async () => {
      const replies = lanes.map((l) => l.next());
      for (const l of lanes) l.finish();
      const digests = new Map<string, string>();
      for (const reply of await Promise.all(replies)) {
        if (reply.type === "digests") for (const [id, hex] of reply.digests) digests.set(id, hex);
      }
      return digests;
    },
    close,
  };
}

/** Shared chunks smaller than this are copied into a slot: a message per few bytes would cost more than the copy. */
const SHARE_MIN_BYTES = 256 * 1024;

/**
 * Hands a file's bytes to a set of lanes through their shared slots, round the ring in the order
 * given (so each lane's digests see the file in order); a caller waits only when every slot is
 * still being hashed. A lane's failure is kept in `failure` and stops nothing by itself: its owner
 * decides (throw, or give no result). Calls must not overlap (their owners chain them).
 */
export class LaneFeeder {
  readonly #lanes: HashLanes;
  readonly #inUse: (Promise<void> | undefined)[];
  #next = 0;
  /** The first error a lane reported, if any. */
  failure: unknown;

  constructor(lanes: HashLanes) {
    this.#lanes = lanes;
    this.#inUse = new Array<Promise<void> | undefined>(lanes.buffers.length).fill(undefined);
  }

  /** Bytes one slot holds. */
  get slotBytes(): number {
    return this.#lanes.buffers[0]!.byteLength;
  }

  /** Copies `chunk`, the file's bytes from `offset`, into slots and hands them over; resolves once copied. */
  async copy(chunk: Uint8Array, offset: number): Promise<void> {
    for (let at = 0; at < chunk.byteLength; at += this.slotBytes) {
      const length = Math.min(this.slotBytes, chunk.byteLength - at);
      const slot = await this.#free();
      this.#lanes.buffers[slot]!.set(chunk.subarray(at, at + length));
      this.#hand(slot, offset + at, length);
    }
  }

  /**
   * Hands `chunk`, the file's bytes from `offset`, to the lanes where it lies when it is a view of
   * shared memory (a kernel arena, a SharedArrayBuffer: no copy), resolving once every lane is done
   * with it; any other chunk is copied (`copy`). Either way the caller may reuse `chunk` after.
   */
  async share(chunk: Uint8Array, offset: number): Promise<void> {
    if (!(chunk.buffer instanceof SharedArrayBuffer) || chunk.byteLength < SHARE_MIN_BYTES) return this.copy(chunk, offset);
    await this.#lanes.feedShared(chunk, offset).catch((error: unknown) => {
      this.failure ??= error;
    });
  }

  /** Lets `fill` write the file's `length` bytes from `offset` (at most `slotBytes`) straight into a free slot (a read: no copy), then hands it over. */
  async fill(offset: number, length: number, fill: (into: Uint8Array) => Promise<void>, hashed?: (bytes: number) => void): Promise<void> {
    const slot = await this.#free();
    await fill(this.#lanes.buffers[slot]!.subarray(0, length));
    this.#hand(slot, offset, length, hashed);
  }

  /** Resolves once every slot handed over is hashed (check `failure` after). */
  async drain(): Promise<void> {
    await Promise.all(this.#inUse);
  }

  async #free(): Promise<number> {
    const slot = this.#next;
    this.#next = (slot + 1) % this.#inUse.length;
    await this.#inUse[slot];
    return slot;
  }

  #hand(slot: number, offset: number, length: number, hashed?: (bytes: number) => void): void {
    this.#inUse[slot] = this.#lanes.feed(slot, offset, length).then(
      () => hashed?.(length),
      (error: unknown) => {
        this.failure ??= error;
      },
    );
  }
}
