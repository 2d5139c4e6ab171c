import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../test/safetensors-test-helpers.js";
import { tapSourceReads, type InputReadTap } from "./input-read-tap.js";
import { openSafetensors } from "./open-safetensors.js";
import { writeSafetensors } from "./safetensors-writer.js";
import type { TensorSource } from "./tensor-source.js";
import { readFile } from "node:fs/promises";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

function recordingTap(): InputReadTap & { seen: [number, Buffer][] } {
  const seen: [number, Buffer][] = [];
  return { seen, bytesLeft: 0, bytesReadItself: 0, bytes: (chunk, offset) => void seen.push([offset, Buffer.from(chunk)]), finish: async () => "", close: async () => undefined };
}

describe("tapSourceReads", () => {
  it("hands every range read to the tap at the offset where those bytes lie in the file", async () => {
    const path = join(dir, "m.safetensors");
    const data = (n: number, seed: number) => Uint8Array.from({ length: n }, (_, i) => (i * 13 + seed) & 0xff);
    await writeSafetensors(path, [
      { name: "x", dtype: "U8", shape: [40], data: data(40, 1) },
      { name: "y", dtype: "F32", shape: [6], data: data(24, 2) },
    ]);
    const file = await readFile(path);
    const source = await openSafetensors(path);
    const tap = recordingTap();
    const tapped = tapSourceReads(source, tap);
    try {
      await tapped.readRange("y", 4, 20);
      await tapped.read("x");
      await tapped.readRange("x", 10, 10);
      expect(tap.seen.length).toBe(3);
      for (const [offset, bytes] of tap.seen) expect(bytes).toEqual(file.subarray(offset, offset + bytes.byteLength));
      expect(tap.seen.map(([, b]) => b.byteLength)).toEqual([16, 40, 0]);
      await expect(tapped.read("missing")).rejects.toMatchObject({ code: "TENSOR_NOT_FOUND" });
    } finally {
      await tapped.close();
    }
  });

  it("leaves a source without file offsets as it is (its tap reads the file at the end)", () => {
    const source = { path: "x.ckpt", descriptors: [], metadata: {}, get: () => undefined, read: async () => new Uint8Array(), readRange: async () => new Uint8Array(), close: async () => undefined } satisfies TensorSource;
    expect(tapSourceReads(source, recordingTap())).toBe(source);
  });
});
