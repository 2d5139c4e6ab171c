import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { errnoOf } from "./file-system-error.js";
import { readFully, writeFully } from "./read-fully.js";

/** File offsets, lengths and buffer addresses of direct writes are multiples of this (the largest logical block size in common use). */
export const DIRECT_ALIGNMENT = 4096;
/** Each staging buffer is written with one direct write once full. */
const STAGING_BYTES = 4 * 1024 * 1024;
/** One buffer filling while the others are written. */
const STAGING_BUFFERS = 3;
/** The bounce buffer of DirectWrites.read (reads past the page cache into memory not on a page). */
const READ_BOUNCE_BYTES = 8 * 1024 * 1024;
/**
 * An append of at least this many bytes that lies in memory as it will lie on disk (its address
 * and its file offset agree modulo DIRECT_ALIGNMENT, see `appendInPlace`) is written from where it
 * is; only its partial first and last blocks are staged.
 */
const IN_PLACE_MIN_BYTES = 256 * 1024;
const WASM_PAGE = 65536;

/**
 * A file written front to back with O_DIRECT: the bytes are copied into aligned staging buffers
 * and each full buffer goes to the disk in one write that bypasses the page cache; an append
 * already laid out in memory as on disk (see `IN_PLACE_MIN_BYTES`) is written from where it lies.
 * On the 2-vCPU virtual machine of the benchmarks the kernel's copy of a buffered write into the
 * page cache cost more CPU than the merge that produced the bytes, and varied from run to run
 * (2.1 GB written and fsynced: 0.8–5.7 s of system time buffered, 0.1 s direct;
 * tools/bench/io-floor.mjs --direct); the output also no longer evicts the inputs from the cache.
 * Appends must be contiguous; anything else ends direct writing (`finish`) and the caller goes on
 * through its buffered handle, which also writes the last partial block. A filesystem that
 * refuses O_DIRECT (tmpfs before Linux 6.6, some network and FUSE ones) gives no `DirectWrites`;
 * one that refuses a write (EINVAL) gets that buffer and all later ones through the buffered handle.
 */
export interface DirectWrites {
  /** Where the next append must start (advanced as soon as `append` is called). */
  readonly position: number;
  /** False once `finish` or `close` was called: appends are refused. */
  readonly open: boolean;
  /** Whether writes still bypass the page cache (false after an EINVAL fell back). */
  readonly direct: boolean;
  /**
   * Stages `bytes`, to go at `at` (which must be `position`), or writes them from where they lie
   * (see `IN_PLACE_MIN_BYTES`); resolves once the caller may reuse them.
   */
  append(bytes: Uint8Array, at: number): Promise<void>;
  /** Bytes copied into the staging buffers so far (appends written in place are not). */
  readonly stagedBytes: number;
  /**
   * Reads appended bytes back into `into` (those at `at` on): after the appends before it and the
   * writes in flight, the staged ones from the staging buffer (appends made meanwhile wait for
   * that copy), the others from the file, past the page cache where it allows (whole blocks
   * through a page-aligned bounce buffer), while appends go on.
   */
  read(into: Uint8Array, at: number): Promise<Uint8Array>;
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

/**
 * A view of `length` bytes of `buffer` (which has DIRECT_ALIGNMENT − 1 bytes to spare) whose
 * address agrees with `filePosition` modulo DIRECT_ALIGNMENT, where `buffer`'s memory starts on a
 * page: bytes read or computed into it are written to that position from where they lie
 * (`DirectWrites.append`). Its first `length` bytes when no position is given.
 */
export function viewLaidOutFor(buffer: Uint8Array, length: number, filePosition: number | undefined): Uint8Array {
  if (filePosition === undefined) return buffer.subarray(0, length);
  const shift = (((filePosition - buffer.byteOffset) % DIRECT_ALIGNMENT) + DIRECT_ALIGNMENT) % DIRECT_ALIGNMENT;
  return buffer.subarray(shift, shift + length);
}

/** The buffers of pageAlignedSharedBytes known to start on a page (WebAssembly memories). */
const onPage = new WeakSet<ArrayBufferLike>();

/** Whether `view` starts on a page: at a multiple of DIRECT_ALIGNMENT in pageAlignedSharedBytes memory that does. */
function liesOnPage(view: Uint8Array): boolean {
  return onPage.has(view.buffer) && view.byteOffset % DIRECT_ALIGNMENT === 0;
}

/**
 * `byteLength` bytes of shared memory that starts on a page (a WebAssembly memory's, up to its
 * 4 GiB), so views of it can be written directly (`viewLaidOutFor`); a plain SharedArrayBuffer
 * where that memory cannot be had.
 */
export function pageAlignedSharedBytes(byteLength: number): Uint8Array {
  const wasm = (globalThis as unknown as { WebAssembly?: { Memory: new (descriptor: { initial: number; maximum: number; shared: boolean }) => { buffer: SharedArrayBuffer } } }).WebAssembly;
  const pages = Math.max(1, Math.ceil(byteLength / WASM_PAGE));
  if (wasm && pages <= 65536) {
    try {
      const { buffer } = new wasm.Memory({ initial: pages, maximum: pages, shared: true });
      onPage.add(buffer);
      return new Uint8Array(buffer, 0, byteLength);
    } catch {
      // Out of address space or memory for it: the plain kind below.
    }
  }
  return new Uint8Array(new SharedArrayBuffer(byteLength));
}

/**
 * Reads of a file written directly (so not in the page cache) that go past the cache too: the
 * whole blocks of a read whose target lies on a page and whose offset lies on a block
 * (`pageAlignedSharedBytes` memory); the rest of it, other reads, and all after a refusal
 * (EINVAL) go through `buffered`. Nothing past the target is written. Reading 2.1 GB just
 * written this way took 1.9–2.2 s and 0.1 s of system time on the benchmarks' VM, through the
 * page cache 5.5 s and 3–4 s. Undefined where O_DIRECT is unavailable or refused.
 */
export async function openDirectReads(path: string, buffered: FileHandle): Promise<{ read(into: Uint8Array, at: number): Promise<Uint8Array>; close(): Promise<void> } | undefined> {
  const handle = await openDirect(path, constants.O_RDONLY);
  if (!handle) return undefined;
  let direct = true;
  return {
    async read(into, at) {
      const whole = into.byteLength - (into.byteLength % DIRECT_ALIGNMENT);
      let done = 0;
      if (direct && whole > 0 && at % DIRECT_ALIGNMENT === 0 && liesOnPage(into)) {
        try {
          // Short at the end of the file: the rest is read (and found missing) below.
          done = (await handle.read(into, 0, whole, at)).bytesRead;
        } catch (error) {
          if (errnoOf(error) !== "EINVAL") throw error;
          direct = false;
        }
      }
      if (done < into.byteLength) await readFully(buffered, into, done, into.byteLength - done, at + done, path);
      return into;
    },
    close: () => handle.close().catch(() => undefined),
  };
}

/** Whether this platform has O_DIRECT and the user has not turned it off (STMERGE_DIRECT_IO=0). */
export function directWritesAvailable(): boolean {
  return typeof constants.O_DIRECT === "number" && process.env.STMERGE_DIRECT_IO !== "0";
}

/** `path` opened with O_DIRECT and `flags`; undefined where that is unavailable or refused. */
async function openDirect(path: string, flags: number): Promise<FileHandle | undefined> {
  if (!directWritesAvailable()) return undefined;
  try {
    return await open(path, flags | constants.O_DIRECT!);
  } catch {
    return undefined;
  }
}

/**
 * Opens `path` (an existing file, also open as `buffered`) for direct writes from offset 0;
 * undefined where O_DIRECT is unavailable or refused.
 */
export async function openDirectWrites(path: string, buffered: FileHandle, options: DirectWritesOptions = {}): Promise<DirectWrites | undefined> {
  const handle = await openDirect(path, constants.O_WRONLY);
  if (!handle) return undefined;
  // Memory that starts on a page (where it cannot be had, the kernel refuses the first write and
  // everything goes through `buffered`).
  const misalign = options.misalignForTest ?? 0;
  const memory = pageAlignedSharedBytes(STAGING_BUFFERS * STAGING_BYTES + misalign);
  const buffers = Array.from({ length: STAGING_BUFFERS }, (_, k) => memory.subarray(misalign + k * STAGING_BYTES, misalign + (k + 1) * STAGING_BYTES));
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
  let stagedBytes = 0;
  /** Cleared when the kernel refused a write from a caller's memory (its buffer does not start on a page). */
  let inPlace = true;

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
  /** Moves on to the next staging buffer, which starts at file offset `at` (on a block boundary). */
  const nextBuffer = (at: number): void => {
    current = (current + 1) % STAGING_BUFFERS;
    bufferStart = at;
    fill = 0;
  };
  /**
   * `bytes` at file offset `at` (the end of what is staged) where they lie in memory as they
   * will on disk: the head that completes the current block is staged and the staged blocks are
   * written, the whole blocks after it go from the caller's memory in one write, and the tail
   * starts the next staging buffer. False, with nothing done, when they do not lie so.
   */
  const appendInPlace = async (bytes: Uint8Array, at: number): Promise<boolean> => {
    if (!direct || !inPlace || bytes.byteLength < IN_PLACE_MIN_BYTES || (bytes.byteOffset - at) % DIRECT_ALIGNMENT !== 0) return false;
    const head = (DIRECT_ALIGNMENT - (at % DIRECT_ALIGNMENT)) % DIRECT_ALIGNMENT;
    const tail = (at + bytes.byteLength) % DIRECT_ALIGNMENT;
    await stage(bytes.subarray(0, head));
    // The staged bytes now end on a block boundary: written now, and the next buffer follows the whole blocks.
    if (fill > 0) {
      startWrite(fill);
      nextBuffer(bufferStart + fill);
    }
    const whole = bytes.subarray(head, bytes.byteLength - tail);
    try {
      const { bytesWritten } = await handle.write(whole, 0, whole.byteLength, bufferStart);
      if (bytesWritten < whole.byteLength) await writeFully(buffered, whole.subarray(bytesWritten), bufferStart + bytesWritten);
    } catch (error) {
      if (errnoOf(error) !== "EINVAL") throw error;
      // The caller's memory does not start on a page after all: staged from now on.
      inPlace = false;
      await stage(bytes.subarray(head));
      return true;
    }
    bufferStart += whole.byteLength;
    // The tail starts the next buffer (stage waits for its previous write to be over).
    await stage(bytes.subarray(bytes.byteLength - tail));
    return true;
  };
  const stage = async (bytes: Uint8Array): Promise<void> => {
    stagedBytes += bytes.byteLength;
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
        nextBuffer(bufferStart + STAGING_BYTES);
      }
    }
  };
  // Reads of written blocks (read) go past the page cache (a read through it would fill the cache
  // with what direct writes kept out of it, at a high cost in system time on the benchmarks' VM):
  // into the target where it lies on a page, else through one bounce buffer, a read at a time.
  let reader: ReturnType<typeof openDirectReads> | undefined;
  let bounce: Uint8Array | undefined;
  let bounceTurn: Promise<unknown> = Promise.resolve();
  const fileReads = new Set<Promise<void>>();
  /** `into.byteLength` bytes at `at`, all within whole blocks already written. */
  const readFromFile = (into: Uint8Array, at: number): Promise<void> => {
    const reading = (async () => {
      const direct = await (reader ??= openDirectReads(path, buffered));
      if (!direct) return void (await readFully(buffered, into, 0, into.byteLength, at, path));
      // A target on a page (pageAlignedSharedBytes memory) at an offset on a block: read into directly.
      if (liesOnPage(into) && at % DIRECT_ALIGNMENT === 0) return void (await direct.read(into, at));
      const turn = bounceTurn.then(async () => {
        bounce ??= pageAlignedSharedBytes(READ_BOUNCE_BYTES);
        for (let done = 0; done < into.byteLength; ) {
          const blockStart = at + done - ((at + done) % DIRECT_ALIGNMENT);
          const blockEnd = Math.min(blockStart + bounce.byteLength, Math.ceil((at + into.byteLength) / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT);
          await direct.read(bounce.subarray(0, blockEnd - blockStart), blockStart);
          const n = Math.min(into.byteLength - done, blockEnd - (at + done));
          into.set(bounce.subarray(at + done - blockStart, at + done - blockStart + n), done);
          done += n;
        }
      });
      bounceTurn = turn.catch(() => undefined);
      await turn;
    })();
    const settled = reading.catch(() => undefined);
    fileReads.add(settled);
    void settled.then(() => fileReads.delete(settled));
    return reading;
  };
  const settle = async (): Promise<void> => {
    await queue.catch(() => undefined);
    await Promise.all(writing);
    await Promise.all(fileReads);
    await (await reader?.catch(() => undefined))?.close();
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
    get stagedBytes() {
      return stagedBytes;
    },
    read(into, at) {
      if (!isOpen) return Promise.reject(new Error(`${path}: direct writes are finished`));
      if (at < 0 || at + into.byteLength > position) return Promise.reject(new Error(`${path}: a read back of ${into.byteLength} bytes at ${at}, past the ${position} appended`));
      // In the queue: no append moves the staging buffers while this copies from them.
      const end = at + into.byteLength;
      const staged = queue.then(async () => {
        await Promise.all(writing);
        if (failure !== undefined) throw failure;
        // Everything before the current buffer is in the file now; the current buffer holds the rest.
        if (end > bufferStart) {
          const from = Math.max(at, bufferStart);
          into.set(buffers[current]!.subarray(from - bufferStart, end - bufferStart), from - at);
        }
        return bufferStart;
      });
      queue = staged.then(
        () => undefined,
        () => undefined,
      );
      // The bytes before the staged ones are whole blocks in the file (bufferStart is on a block
      // boundary), which appends never touch again: read outside the queue.
      return staged.then(async (inFile) => {
        if (at < inFile) await readFromFile(into.subarray(0, Math.min(end, inFile) - at), at);
        return into;
      });
    },
    append(bytes, at) {
      if (!isOpen) return Promise.reject(new Error(`${path}: direct writes are finished`));
      if (at !== position) return Promise.reject(new Error(`${path}: a direct write at ${at}, expected ${position}`));
      position += bytes.byteLength;
      // In call order: each append copies after the one before it.
      const staged = queue.then(async () => {
        if (!(await appendInPlace(bytes, at))) await stage(bytes);
      });
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
