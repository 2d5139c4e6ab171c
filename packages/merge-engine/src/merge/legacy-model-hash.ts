import { createHash } from "node:crypto";
import { open } from "node:fs/promises";

/** A1111's legacy window: 0x10000 bytes at offset 0x100000 (modules/sd_models.py `model_hash`). */
const OFFSET = 0x100000;
const LENGTH = 0x10000;

/**
 * A1111's legacy `model_hash` of a file: the first 8 hex digits of the SHA-256 of the 64 KiB at
 * offset 1 MiB (fewer bytes, or none, when the file is shorter, as A1111's `file.read` gives).
 * This is what `sd_merge_models[…].legacy_hash` holds. One 64 KiB read.
 */
export async function legacyModelHash(path: string): Promise<string> {
  const handle = await open(path, "r");
  try {
    const buffer = new Uint8Array(LENGTH);
    let got = 0;
    while (got < LENGTH) {
      const { bytesRead } = await handle.read(buffer, got, LENGTH - got, OFFSET + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    return createHash("sha256").update(buffer.subarray(0, got)).digest("hex").slice(0, 8);
  } finally {
    await handle.close();
  }
}
