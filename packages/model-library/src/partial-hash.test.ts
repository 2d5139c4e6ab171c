import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { partialBlockOffsets, partialHash, PARTIAL_BLOCK_BYTES, WHOLE_FILE_MAX_BYTES } from "./partial-hash.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-library-partial-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("partialHash", () => {
  it("samples three blocks inside the file and the tail, never the head", () => {
    const size = 6_938_000_000; // an SDXL checkpoint
    const offsets = partialBlockOffsets(size);
    expect(offsets).toHaveLength(4);
    expect(offsets[0]).toBeGreaterThan(1_000_000_000);
    expect(offsets.every((o) => o % 4096 === 0 || o === size - PARTIAL_BLOCK_BYTES)).toBe(true);
    expect(offsets[3]).toBe(size - PARTIAL_BLOCK_BYTES);
  });
  it("a small file is read whole: its partial hash is its SHA-256", async () => {
    const bytes = Buffer.from("a small model file");
    writeFileSync(join(dir, "s"), bytes);
    const handle = await open(join(dir, "s"), "r");
    try {
      expect(await partialHash(handle, bytes.length, "s")).toEqual({ hash: createHash("sha256").update(bytes).digest("hex"), whole: true, bytesRead: bytes.length });
    } finally {
      await handle.close();
    }
  });
  it("a large file hashes exactly the sampled blocks", async () => {
    const bytes = Buffer.alloc(WHOLE_FILE_MAX_BYTES * 3 + 123);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 0xff;
    writeFileSync(join(dir, "l"), bytes);
    const expected = createHash("sha256");
    for (const o of partialBlockOffsets(bytes.length)) expected.update(bytes.subarray(o, o + PARTIAL_BLOCK_BYTES));
    const handle = await open(join(dir, "l"), "r");
    try {
      expect(await partialHash(handle, bytes.length, "l")).toEqual({ hash: expected.digest("hex"), whole: false, bytesRead: 4 * PARTIAL_BLOCK_BYTES });
    } finally {
      await handle.close();
    }
  });
});
