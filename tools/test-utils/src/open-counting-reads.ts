import { open, type FileHandle } from "node:fs/promises";

export interface CountingReads {
  /** A handle that reads `path` and records each read's length in `reads`. */
  readonly handle: FileHandle;
  readonly reads: number[];
  close(): Promise<void>;
}

/**
 * Opens `path` for reading through a handle that records what is read through it, so a test can
 * bound what a reader costs on a hostile file (a huge declared size, a sparse gigabyte stride).
 */
export async function openCountingReads(path: string): Promise<CountingReads> {
  const inner = await open(path, "r");
  const reads: number[] = [];
  const handle = {
    read: async (buffer: Uint8Array, offset: number, length: number, position: number) => {
      reads.push(length);
      return inner.read(buffer, offset, length, position);
    },
  } as unknown as FileHandle;
  return { handle, reads, close: () => inner.close() };
}
