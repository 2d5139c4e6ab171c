import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { errnoOf } from "./file-system-error.js";
import { writeFully } from "./read-fully.js";

/** File offsets, lengths and buffer addresses of direct writes are multiples of this (the largest logical block size in common use). */
export const DIRECT_ALIGNMENT = 4096;
/** Each staging buffer is written with one direct write once full. */
const STAGING_BYTES = 4 * 1024 * 1024;
/** One buffer filling while the others are written. */
const STAGING_BUFFERS = 3;
const WASM_PAGE = 65536;

/**
 * A file written front to back with O_DIRECT: the bytes are copied into aligned staging buffers
 * and each full buffer goes to the disk in one write that bypasses the page cache. On a virtual
 * machine whose memory is backed on first touch, the page cache's copy of a buffered write cost
 * more CPU than the merge that produced the bytes (2.1 GB: 2.9–5.7 s of kernel time buffered,
 * 0.1 s direct; tools/bench/io-floor.mjs --direct), and the output no longer evicts the
 * inputs from the cache. Appends must be contiguous; anything else ends direct writing
 * (`finish`) and the caller goes on through its buffered handle, which also writes the last
 * partial block. A filesystem that refuses O_DIRECT (tmpfs before Linux 6.6, some network and FUSE ones)
 * gives no `DirectWrites`; one that
 * refuses a write (EINVAL) gets that buffer and all later ones through the buffered handle.
 */
export interface DirectWrites {
  /** Where the next append must start (advanced as soon as `append` is called). */
  readonly position: number;
  /** False once `finish` or `close` was called: appends are refused. */
  readonly open: boolean;
  /** Whether writes still bypass the page cache (false after an EINVAL fell back). */
  readonly direct: boolean;
  /** Stages `bytes`, to go at `at` (which must be `position`); resolves once the caller may reuse them. */
  append(bytes: Uint8Array, at: number): Promise<void>;
  /** Writes what is staged (whole blocks directly, the partial last block through the buffered handle), waits for every write, and closes. */
  finish(): Promise<void>;
  /** Waits for the writes in flight (their errors ignored) and closes without writing more: the file is being discarded. */
  close(): Promise<void>;
}

export interface DirectWritesOptions {
  /**
   * Starts the staging buffers this many bytes past an aligned address, so the kernel refuses
   * their direct writes (EINVAL): how tests reach the buffered fallback on a filesystem that
   * takes O_DIRECT.
   */
  readonly misalignForTest?: number;
}

/** Whether this platform has O_DIRECT and the user has not turned it off (STMERGE_DIRECT_IO=0). */
export function directWritesAvailable(): boolean {
  return typeof constants.O_DIRECT === "number" && process.env.STMERGE_DIRECT_IO !== "0";
}

/**
 * Opens `path` (an existing file, also open as `buffered`) for direct writes from offset 0;
 * undefined where O_DIRECT is unavailable or refused.
 */
export async function openDirectWrites(path: string, buffered: FileHandle, options: DirectWritesOptions = {}): Promise<DirectWrites | undefined> {
  if (!directWritesAvailable()) return undefined;
  // The part of the WebAssembly API used here (Node's types do not declare it).
  const wasm = (globalThis as unknown as { WebAssembly?: { Memory: new (descriptor: { initial: number }) => { buffer: ArrayBuffer } } }).WebAssembly;
  if (wasm === undefined) return undefined;
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_WRONLY | constants.O_DIRECT!);
  } catch {
    return undefined;
  }
  // WebAssembly memory starts on a page boundary (V8 maps it on its own), which an ArrayBuffer
  // from the allocator does not.
  const misalign = options.misalignForTest ?? 0;
  const memory = new wasm.Memory({ initial: Math.ceil((STAGING_BUFFERS * STAGING_BYTES + misalign) / WASM_PAGE) });
  const buffers = Array.from({ length: STAGING_BUFFERS }, (_, k) => new Uint8Array(memory.buffer, misalign + k * STAGING_BYTES, STAGING_BYTES));
  const writing: (Promise<void> | undefined)[] = buffers.map(() => undefined);
  let direct = true;
  let isOpen = true;
  let position = 0;
  /** The buffer filling, the file offset of its first byte, and how many bytes it holds. */
  let current = 0;
  let bufferStart = 0;
  let fill = 0;
  let failure: unknown;
  let queue: Promise<void> = Promise.resolve();

  /** Writes `length` bytes of buffer k at `at`: directly, or through the buffered handle once direct writes were refused. */
  const writeOut = async (k: number, length: number, at: number): Promise<void> => {
    const bytes = buffers[k]!.subarray(0, length);
    if (direct) {
      try {
        const { bytesWritten } = await handle.write(bytes, 0, length, at);
        // A short direct write (a nearly full disk) ends on a block boundary: the rest goes buffered.
        if (bytesWritten < length) await writeFully(buffered, bytes.subarray(bytesWritten), at + bytesWritten);
        return;
      } catch (error) {
        if (errnoOf(error) !== "EINVAL") throw error;
        direct = false;
      }
    }
    await writeFully(buffered, bytes, at);
  };
  /** Starts writing the current buffer (`length` of its bytes); the next append that needs it waits. */
  const startWrite = (length: number): void => {
    const k = current;
    const running = writeOut(k, length, bufferStart).catch((error: unknown) => void (failure ??= error));
    writing[k] = running;
  };
  const stage = async (bytes: Uint8Array): Promise<void> => {
    let done = 0;
    while (done < bytes.byteLength) {
      if (failure !== undefined) throw failure;
      if (fill === 0) {
        // Its previous write must be over before the buffer is filled again.
        await writing[current];
        writing[current] = undefined;
        if (failure !== undefined) throw failure;
      }
      const n = Math.min(STAGING_BYTES - fill, bytes.byteLength - done);
      buffers[current]!.set(bytes.subarray(done, done + n), fill);
      fill += n;
      done += n;
      if (fill === STAGING_BYTES) {
        startWrite(STAGING_BYTES);
        current = (current + 1) % STAGING_BUFFERS;
        bufferStart += STAGING_BYTES;
        fill = 0;
      }
    }
  };
  const settle = async (): Promise<void> => {
    await queue.catch(() => undefined);
    await Promise.all(writing);
  };

  return {
    get position() {
      return position;
    },
    get open() {
      return isOpen;
    },
    get direct() {
      return direct;
    },
    append(bytes, at) {
      if (!isOpen) return Promise.reject(new Error(`${path}: direct writes are finished`));
      if (at !== position) return Promise.reject(new Error(`${path}: a direct write at ${at}, expected ${position}`));
      position += bytes.byteLength;
      // In call order: each append copies after the one before it.
      const staged = queue.then(() => stage(bytes));
      queue = staged.catch(() => undefined);
      return staged;
    },
    async finish() {
      if (!isOpen) return;
      isOpen = false;
      try {
        await queue;
        if (failure !== undefined) throw failure;
        const whole = fill - (fill % DIRECT_ALIGNMENT);
        if (fill > 0) {
          await writing[current];
          if (whole > 0) startWrite(whole);
          // The last partial block through the page cache: it starts on a block boundary, so no
          // block is written both ways.
          if (fill > whole) await writeFully(buffered, buffers[current]!.subarray(whole, fill), bufferStart + whole);
        }
        await Promise.all(writing);
        if (failure !== undefined) throw failure;
      } finally {
        await settle();
        await handle.close().catch(() => undefined);
      }
    },
    async close() {
      isOpen = false;
      await settle();
      await handle.close().catch(() => undefined);
    },
  };
}
