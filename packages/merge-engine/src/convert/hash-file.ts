import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import type { ProgressCallback } from "@stmerge/core-tensors";

/** Streaming SHA-256 of a whole file in 8 MiB reads; memory stays constant. */
export async function sha256File(path: string, onProgress?: ProgressCallback): Promise<string> {
  const handle = await open(path, "r");
  try {
    const total = (await handle.stat()).size;
    const hash = createHash("sha256");
    const buffer = new Uint8Array(8 << 20);
    let done = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, done);
      if (bytesRead === 0) break;
      hash.update(buffer.subarray(0, bytesRead));
      done += bytesRead;
      onProgress?.({ phase: "hash", bytesDone: done, bytesTotal: total });
    }
    return hash.digest("hex");
  } finally {
    await handle.close();
  }
}
