import type { FileHandle } from "node:fs/promises";
import { TensorIoError } from "./errors.js";

/** Largest single read we issue; Node refuses reads over 2 GiB - 1. */
const MAX_READ_CHUNK = 1 << 30;

/**
 * Positioned read of exactly `length` bytes into `target` at `targetOffset`, looping over short
 * reads and chunking reads above 1 GiB. A file that ends early is an error, never silent zeros.
 */
export async function readFully(handle: FileHandle, target: Uint8Array, targetOffset: number, length: number, position: number, file: string): Promise<void> {
  let done = 0;
  while (done < length) {
    const want = Math.min(length - done, MAX_READ_CHUNK);
    const { bytesRead } = await handle.read(target, targetOffset + done, want, position + done);
    if (bytesRead === 0) {
      throw new TensorIoError("IO_SHORT_READ", `${file}: file ended after ${position + done} bytes, expected ${position + length}`, { file });
    }
    done += bytesRead;
  }
}

/** Positioned write of all of `bytes`, looping over partial writes. */
export async function writeFully(handle: FileHandle, bytes: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const want = Math.min(bytes.byteLength - done, MAX_READ_CHUNK);
    const { bytesWritten } = await handle.write(bytes, done, want, position + done);
    done += bytesWritten;
  }
}
