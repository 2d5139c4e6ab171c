import type { KernelArena } from "./kernel-backend.js";

/** What a kernel worker needs to run the arena's kernels in place (worker-pool sends it once per worker). */
export interface KernelArenaAttachment {
  /** A shared WebAssembly.Memory (Node's types do not declare the WebAssembly API). */
  readonly memory: object;
  /** Worker slot s's scratch is [scratchBase + s · scratchBytes, + scratchBytes). */
  readonly scratchBase: number;
  readonly scratchBytes: number;
}

const PAGE = 65536;
/** The module's static data lies below this (wasm-kernels-module refuses an arena where it does not). */
export const ARENA_STATIC_BYTES = PAGE;
/**
 * Scratch per worker thread: TIES's bins (256 KiB) and the ops' staging blocks, enough for 50
 * inputs; an op that needs more runs the copying kernels instead.
 */
export const ARENA_SCRATCH_BYTES = 2 << 20;
/** wasm32's limit: 4 GiB. Past it, allocations fall back to plain SharedArrayBuffers. */
const MAX_PAGES = 65536;
/** Slack after each block: kernels read up to 7 elements (28 bytes) past a block's range. */
const TAIL = 64;

interface WasmMemory {
  readonly buffer: SharedArrayBuffer;
  grow(pages: number): number;
}
interface WasmMemoryApi {
  Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => WasmMemory;
}

/**
 * The memory behind a CPU backend's kernel arenas: one shared WebAssembly memory that every kernel
 * worker's arena instance of the SIMD module also uses, so the kernels read and write its blocks
 * in place instead of copying them through their own memory. Best fit with splitting and
 * coalescing. The memory grows as blocks are taken and never shrinks (WebAssembly memories
 * cannot), and it lives as long as the backend: each merge's arena (ArenaLease) takes blocks
 * from it and gives them back, so the next merge reuses the same pages. One memory per arena
 * instead kept each merge's pages until the workers' collector ran: +90 MB of RSS per merge in
 * a process running five in a row.
 */
export class SharedKernelArena {
  readonly attachment: KernelArenaAttachment;
  readonly #memory: WasmMemory;
  /** Every buffer object the memory has given (one per size it has had): views of these are in the arena. */
  readonly #buffers = new WeakSet<ArrayBufferLike>();
  /** Blocks handed out: start → size. */
  readonly #taken = new Map<number, number>();
  /** Free blocks below #top, by address, never adjacent (coalesced). */
  #free: { at: number; size: number }[] = [];
  #top: number;
  /** Where blocks start: below lie the module's static data and the threads' scratch. */
  readonly #blocksStart: number;
  /** The highest #top so far: memory above it has never been handed out, so it is still zero. */
  #highWater: number;

  /**
   * `maxBytes`: how far the memory may grow (default and limit: wasm32's 4 GiB). Throws where the
   * engine cannot make a shared memory (the backend then makes no arena).
   */
  constructor(threads: number, maxBytes = MAX_PAGES * PAGE) {
    const api = (globalThis as unknown as { WebAssembly: WasmMemoryApi }).WebAssembly;
    const scratchEnd = ARENA_STATIC_BYTES + threads * ARENA_SCRATCH_BYTES;
    const maximum = Math.min(MAX_PAGES, Math.max(scratchEnd / PAGE, Math.floor(maxBytes / PAGE)));
    this.#memory = new api.Memory({ initial: scratchEnd / PAGE, maximum, shared: true });
    this.attachment = { memory: this.#memory, scratchBase: ARENA_STATIC_BYTES, scratchBytes: ARENA_SCRATCH_BYTES };
    this.#top = scratchEnd;
    this.#blocksStart = scratchEnd;
    this.#highWater = scratchEnd;
  }

  allocBytes(byteLength: number): Uint8Array {
    const at = this.#take(byteLength);
    if (at < 0) return new Uint8Array(new SharedArrayBuffer(byteLength));
    return new Uint8Array(this.#buffer(), at, byteLength);
  }

  allocF32(length: number): Float32Array {
    const at = this.#take(length * 4);
    if (at < 0) return new Float32Array(new SharedArrayBuffer(length * 4));
    return new Float32Array(this.#buffer(), at, length);
  }

  /** Gives a block back (a view allocBytes/allocF32 returned; others are ignored). */
  free(view: ArrayBufferView): void {
    if (!this.#buffers.has(view.buffer)) return;
    const size = this.#taken.get(view.byteOffset);
    if (size === undefined) return;
    this.#taken.delete(view.byteOffset);
    let at = view.byteOffset;
    let end = at + size;
    // Coalesce with the free neighbours, then give the top back if the block ends there.
    const i = this.#free.findIndex((b) => b.at > at);
    const after = i < 0 ? this.#free.length : i;
    const prev = this.#free[after - 1];
    const next = this.#free[after];
    let start = after;
    let count = 0;
    if (prev && prev.at + prev.size === at) {
      at = prev.at;
      start = after - 1;
      count++;
    }
    if (next && next.at === end) {
      end = next.at + next.size;
      count++;
    }
    if (end === this.#top) {
      this.#free.splice(start, count);
      this.#top = at;
    } else {
      this.#free.splice(start, count, { at, size: end - at });
    }
  }

  /**
   * Where `view` lives in the arena's memory (its byte address), or −1 when it is not in it. A
   * view a caller made over the memory's static data or the threads' scratch (from a block's
   * `.buffer`) is not in it either: the kernels copy it rather than write there in place.
   */
  addressOf(view: ArrayBufferView): number {
    return this.#buffers.has(view.buffer) && view.byteOffset >= this.#blocksStart ? view.byteOffset : -1;
  }

  /** Bytes the memory holds (grown so far); the blocks in use are at most this less the scratch. */
  get byteLength(): number {
    return this.#memory.buffer.byteLength;
  }

  /** A block of at least `byteLength` bytes (zero-filled), or −1 when the memory cannot hold it. */
  #take(byteLength: number): number {
    const size = Math.ceil((Math.max(1, byteLength) + TAIL) / 64) * 64;
    let best = -1;
    this.#free.forEach((b, i) => {
      if (b.size >= size && (best < 0 || b.size < this.#free[best]!.size)) best = i;
    });
    let at: number;
    if (best >= 0) {
      const block = this.#free[best]!;
      at = block.at;
      if (block.size === size) this.#free.splice(best, 1);
      else this.#free[best] = { at: at + size, size: block.size - size };
    } else {
      at = this.#top;
      const end = at + size;
      const have = this.#memory.buffer.byteLength;
      if (end > have) {
        try {
          this.#memory.grow(Math.ceil((end - have) / PAGE));
        } catch {
          return -1; // past 4 GiB, or the system refused
        }
      }
      this.#top = end;
    }
    // Below the high-water mark the bytes are an earlier block's; above it the memory is new (zero).
    if (at < this.#highWater) new Uint8Array(this.#memory.buffer, at, Math.min(size, this.#highWater - at)).fill(0);
    this.#highWater = Math.max(this.#highWater, at + size);
    this.#taken.set(at, size);
    return at;
  }

  #buffer(): SharedArrayBuffer {
    const buffer = this.#memory.buffer;
    this.#buffers.add(buffer);
    return buffer;
  }
}

/**
 * One caller's arena (KernelBackend.createArena): its blocks of the backend's SharedKernelArena,
 * all given back by release(). After release, views from it must not be used (their blocks go to
 * later arenas) and new allocations are plain shared buffers.
 */
export class ArenaLease implements KernelArena {
  readonly #memory: SharedKernelArena;
  readonly #views = new Set<ArrayBufferView>();
  #released = false;

  constructor(memory: SharedKernelArena) {
    this.#memory = memory;
  }

  allocBytes(byteLength: number): Uint8Array {
    if (this.#released) return new Uint8Array(new SharedArrayBuffer(byteLength));
    const view = this.#memory.allocBytes(byteLength);
    this.#views.add(view);
    return view;
  }

  allocF32(length: number): Float32Array {
    if (this.#released) return new Float32Array(new SharedArrayBuffer(length * 4));
    const view = this.#memory.allocF32(length);
    this.#views.add(view);
    return view;
  }

  free(view: ArrayBufferView): void {
    if (!this.#views.delete(view)) return;
    this.#memory.free(view);
  }

  release(): void {
    this.#released = true;
    for (const view of this.#views) this.#memory.free(view);
    this.#views.clear();
  }
}
