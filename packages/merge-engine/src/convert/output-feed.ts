import { DIRECT_ALIGNMENT, pageAlignedSharedBytes, readAheadChunks, throwIfAborted, type OutputByteTap, type ProgressCallback } from "@stmerge/core-tensors";

/**
 * Feeds a tap (the output's hashers) an output written front to back whose header becomes final
 * only later (it holds the input's SHA-256, hashed meanwhile): once `start` gets the final header,
 * the bytes written so far are read back from the file while the writing goes on, and from
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
    // Up to the first block boundary alone, then whole chunks from block boundaries into memory
    // that starts on a page: the file, written past the page cache, is read past it in place.
    const firstBlockEnd = Math.min(Math.ceil(fed / DIRECT_ALIGNMENT) * DIRECT_ALIGNMENT, writtenEnd);
    if (firstBlockEnd > fed) {
      const bytes = await readWritten(new Uint8Array(firstBlockEnd - fed), fed);
      await tap.bytes(bytes, fed);
      fed = firstBlockEnd;
    }
    // Written bytes may keep arriving while this reads (the end is asked again before each read).
    // It goes live only once nothing is left, checked in the same turn as it goes live: leaving the
    // loop takes a few ticks, in which a write could arrive.
    while (fed < writtenEnd) {
      for await (const { at, bytes } of readAheadChunks(readWritten, fed, () => writtenEnd, Math.min(CATCH_UP_CHUNK, file.size), pageAlignedSharedBytes)) {
        throwIfAborted(options.signal, file.path, "hashing the output");
        await tap.bytes(bytes, at);
        fed = at + bytes.byteLength;
        options.onProgress?.({ phase: "hash output", bytesDone: fed, bytesTotal: file.size });
      }
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
