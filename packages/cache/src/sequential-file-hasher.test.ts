import { createHash, randomBytes } from "node:crypto";
import { appendFileSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { fileIdentityOf } from "@stmerge/core-tensors";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSequentialFileHasher } from "./sequential-file-hasher.js";

let dir: string;
let path: string;
let file: Buffer;
// The reference: node:crypto over the whole file read at once.
const wholeFileSha256 = (p: string) => createHash("sha256").update(readFileSync(p)).digest("hex");

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-seqhash-"));
  path = join(dir, "model.bin");
  // Not a multiple of the 8 MiB read chunk, so the tail ends mid-chunk.
  file = randomBytes(9 * 1024 * 1024 + 12345);
  writeFileSync(path, file);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Hands the hasher the file's own bytes for [start, end), as a reader would after reading them. */
const range = (start: number, end: number): [Uint8Array, number] => [new Uint8Array(file.subarray(start, end)), start];

/** Deterministic shuffle (a seeded LCG), so a failure reproduces. */
function shuffled<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

describe("createSequentialFileHasher", () => {
  it("reads in file order after the header: only the header is read by the hasher itself", async () => {
    const h = await createSequentialFileHasher(path);
    try {
      for (let at = 4096; at < file.byteLength; at += 1_000_000) await h.bytes(...range(at, Math.min(file.byteLength, at + 1_000_000)));
      expect(h.bytesLeft).toBe(0);
      expect(await h.finish()).toBe(wholeFileSha256(path));
      expect(h.bytesReadItself).toBe(4096);
    } finally {
      await h.close();
    }
  });

  it("any read order (shuffled, overlapping, repeated, concurrent) gives the whole file's SHA-256", async () => {
    const bounds: [number, number][] = [];
    for (let at = 0; at < file.byteLength; at += 300_001) bounds.push([at, Math.min(file.byteLength, at + 300_001 + (at % 3) * 5000)]);
    for (const seed of [1, 2, 3]) {
      const h = await createSequentialFileHasher(path, { gapFillMaxBytes: 1_000_000 });
      try {
        const order = shuffled(bounds, seed);
        // Half one after another, half at once (a merge reads several inputs in parallel).
        for (const [s, e] of order.slice(0, order.length / 2)) await h.bytes(...range(s, e));
        await Promise.all(order.slice(order.length / 2).map(([s, e]) => h.bytes(...range(s, e))));
        await h.bytes(...range(5, 10));
        expect(await h.finish()).toBe(wholeFileSha256(path));
        // Every byte is read by the hasher at most once.
        expect(h.bytesReadItself).toBeLessThanOrEqual(file.byteLength);
        expect(await h.finish()).toBe(wholeFileSha256(path));
      } finally {
        await h.close();
      }
    }
  });

  it("fills a small gap at once, leaves a far read for finish, and ignores reads behind", async () => {
    const h = await createSequentialFileHasher(path, { gapFillMaxBytes: 100_000 });
    try {
      await h.bytes(...range(50_000, 60_000)); // gap of 50 000: filled
      expect(h.bytesLeft).toBe(file.byteLength - 60_000);
      expect(h.bytesReadItself).toBe(50_000);
      await h.bytes(...range(1_000, 2_000)); // behind: ignored
      await h.bytes(...range(5_000_000, 5_100_000)); // far ahead: left for later
      expect(h.bytesLeft).toBe(file.byteLength - 60_000);
      await h.bytes(...range(55_000, 70_000)); // overlaps the cursor: advances it
      expect(h.bytesLeft).toBe(file.byteLength - 70_000);
      const progress: { bytesDone: number; bytesTotal: number }[] = [];
      expect(await h.finish({ onProgress: (e) => progress.push(e) })).toBe(wholeFileSha256(path));
      expect(progress.at(-1)).toMatchObject({ bytesDone: file.byteLength - 70_000, bytesTotal: file.byteLength - 70_000 });
    } finally {
      await h.close();
    }
  });

  it("a read handed over while finish runs waits its turn (calls are taken in the order made)", async () => {
    const h = await createSequentialFileHasher(path);
    try {
      const digest = h.finish();
      await h.bytes(...range(0, 100));
      expect(await digest).toBe(wholeFileSha256(path));
      expect(h.bytesReadItself).toBe(file.byteLength);
    } finally {
      await h.close();
    }
  });

  it("an empty file", async () => {
    const empty = join(dir, "empty.bin");
    writeFileSync(empty, "");
    const h = await createSequentialFileHasher(empty);
    expect(await h.finish()).toBe(createHash("sha256").digest("hex"));
    await h.close();
  });

  it("refuses a file that changed while it was read", async () => {
    const changing = join(dir, "changing.bin");
    writeFileSync(changing, file.subarray(0, 1000));
    const h = await createSequentialFileHasher(changing);
    try {
      // The size and mtime it was opened with, to be recorded with the digest.
      expect([h.size, h.mtimeMs]).toEqual([1000, statSync(changing).mtimeMs]);
      await h.bytes(new Uint8Array(file.subarray(0, 500)), 0);
      appendFileSync(changing, "more");
      // The code hashFile gives the same failure.
      await expect(h.finish()).rejects.toMatchObject({ code: "HASH_FILE_CHANGED", file: changing });
    } finally {
      await h.close();
    }
  });

  it("refuses a path renamed over since the reader opened it (its gaps would be the new file's bytes)", async () => {
    const replaced = join(dir, "replaced.bin");
    writeFileSync(replaced, file.subarray(0, 2000));
    // The reader's handle keeps the old file; another of the same size is renamed over the path.
    const reader = await open(replaced, "r");
    try {
      const opened = fileIdentityOf(await reader.stat());
      // Unchanged: accepted, and the digest is the file's.
      const same = await createSequentialFileHasher(replaced, { opened });
      expect(await same.finish()).toBe(wholeFileSha256(replaced));
      await same.close();
      writeFileSync(join(dir, "new.bin"), file.subarray(2000, 4000));
      renameSync(join(dir, "new.bin"), replaced);
      const error = await createSequentialFileHasher(replaced, { opened }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: "HASH_FILE_CHANGED", file: replaced });
      expect((error as Error).message.split("\n")).toHaveLength(1);
    } finally {
      await reader.close();
    }
  });

  it("stops at an abort and names the file", async () => {
    const h = await createSequentialFileHasher(path);
    const controller = new AbortController();
    controller.abort();
    await expect(h.finish({ signal: controller.signal })).rejects.toMatchObject({ code: "ABORTED", file: path });
    await h.close();
    await h.close();
  });

  it("a missing file is one typed error", async () => {
    await expect(createSequentialFileHasher(join(dir, "nope.bin"))).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
  });
});
