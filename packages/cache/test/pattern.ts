import { open } from "node:fs/promises";

/** byte[i] = ((i * 2654435761) mod 2^32) >> 13 & 0xff: the recipe tools/fixtures/cache_hashes.py hashes. */
export function pattern(start: number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = (Math.imul(start + i, 2654435761 | 0) >>> 13) & 0xff;
  return out;
}

/** Creates a sparse file of `size` bytes with `markers` (offset, hex bytes) written in. */
export async function writeSparseFile(path: string, size: number, markers: [number, string][]): Promise<void> {
  const handle = await open(path, "w");
  try {
    await handle.truncate(size);
    for (const [offset, hex] of markers) {
      const bytes = Buffer.from(hex, "hex");
      await handle.write(bytes, 0, bytes.length, offset);
    }
  } finally {
    await handle.close();
  }
}
