import { throwIfAborted, type OutputByteTap, type ProgressCallback } from "@stmerge/core-tensors";

/**
 * Feeds a tap (the output's hashers) an output written front to back whose header becomes final
 * only later (it holds the input's SHA-256, hashed meanwhile): once `start` gets the final header,
 * the bytes written so far are read back (from the page cache) while the writing goes on, and from
 * the moment it has caught up every write is handed to the tap as it is made. So the output's
 * hashes need no read of the whole file after the last write, only of what was written before the
 * header was known. With the header known from the start the tap takes every byte as written.
 */
export interface OutputFeed {
  /** True once the tap is fed each write directly (the caller may write and feed in parallel). */
  readonly live: boolean;
  /**
   * The final header: fed first, then the catch-up from the file starts. Call once. Resolves when
   * the feed is live (at once after the header when nothing was written yet); rejections also
   * reach `finish`, so it need not be awaited.
   */
  start(head: Uint8Array): Promise<void>;
  /**
   * `bytes` at `offset` are in the file (file order, no gaps): fed now when live, else read back
   * by the catch-up. When `live` was true before the write, may be called alongside it.
   */
  written(bytes: Uint8Array, offset: number): Promise<void>;
  /** Resolves once the tap has had every byte up to `size`; throws what the catch-up threw. */
  finish(): Promise<void>;
}

const CATCH_UP_CHUNK = 16 * 1024 * 1024;

export function createOutputFeed(
  tap: OutputByteTap,
  file: { readonly size: number; readonly dataStart: number; readonly path: string },
  readWritten: (into: Uint8Array, offset: number) => Promise<Uint8Array>,
  options: { readonly signal?: AbortSignal | undefined; readonly onProgress?: ProgressCallback | undefined } = {},
): OutputFeed {
  let live = false;
  let fed = 0;
  // The header region is written at `begin` (a placeholder when not final): the catch-up starts after it.
  let writtenEnd = file.dataStart;
  let catchingUp: Promise<void> | undefined;

  const catchUp = async (head: Uint8Array): Promise<void> => {
    await tap.start?.({ size: file.size, head });
    await tap.bytes(head, 0);
    fed = head.byteLength;
    // Two buffers of shared memory: the next chunk is read while the tap takes this one (a hashing
    // tap on worker threads reads it where it lies).
    let buffers: Uint8Array[] | undefined;
    let reading: { at: number; length: number; bytes: Promise<Uint8Array> } | undefined;
    const readAhead = (at: number, turn: number): void => {
      const length = Math.min(CATCH_UP_CHUNK, writtenEnd - at);
      buffers ??= [new Uint8Array(new SharedArrayBuffer(CATCH_UP_CHUNK)), new Uint8Array(new SharedArrayBuffer(CATCH_UP_CHUNK))];
      reading = { at, length, bytes: readWritten(buffers[turn % 2]!.subarray(0, length), at) };
      // A failed read is thrown when awaited; until then it is not unhandled.
      reading.bytes.catch(() => undefined);
    };
    try {
      // Written bytes may keep arriving while this reads; it goes live only once nothing is left.
      for (let turn = 0; fed < writtenEnd; turn++) {
        throwIfAborted(options.signal, file.path, "hashing the output");
        if (reading?.at !== fed) readAhead(fed, turn);
        const { length, bytes } = reading!;
        const chunk = await bytes;
        if (fed + length < writtenEnd) readAhead(fed + length, turn + 1);
        await tap.bytes(chunk, fed);
        fed += length;
        options.onProgress?.({ phase: "hash output", bytesDone: fed, bytesTotal: file.size });
      }
    } finally {
      await reading?.bytes.catch(() => undefined);
    }
    live = true;
  };

  return {
    get live() {
      return live;
    },
    start(head) {
      if (catchingUp) throw new Error("OutputFeed.start called twice");
      if (head.byteLength !== file.dataStart) throw new Error(`OutputFeed: a ${head.byteLength}-byte header where ${file.dataStart} bytes were reserved`);
      const running = catchUp(head);
      catchingUp = running;
      // Awaited in finish; kept from being an unhandled rejection until then.
      running.catch(() => undefined);
      return running;
    },
    async written(bytes, offset) {
      if (live) {
        await tap.bytes(bytes, offset);
        fed = offset + bytes.byteLength;
      }
      writtenEnd = offset + bytes.byteLength;
    },
    async finish() {
      if (!catchingUp) throw new Error("OutputFeed.finish before start");
      await catchingUp;
      if (fed !== file.size) throw new Error(`OutputFeed: ${fed} of ${file.size} bytes fed`);
    },
  };
}
