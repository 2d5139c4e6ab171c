import { constants } from "node:fs";
import { open, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { seededBytes } from "@stmerge/test-utils";
import { takesODirect, tempDir } from "../test/safetensors-test-helpers.js";
import { DIRECT_ALIGNMENT, directWritesAvailable, openDirectReads, openDirectWrites, pageAlignedSharedBytes, viewLaidOutFor, type DirectWrites } from "./direct-writes.js";

let dir: string;
let cleanup: () => Promise<void>;
beforeAll(async () => ({ dir, cleanup } = await tempDir()));
afterAll(() => cleanup());

const MiB = 1024 * 1024;

/**
 * Appends `pieces` to a new file through DirectWrites (from offset 0, in order) and finishes;
 * returns the file's bytes, whether its writes bypassed the page cache (undefined: no direct
 * writes on this filesystem) and how many bytes were staged.
 */
async function writeThrough(name: string, pieces: readonly Uint8Array[], options: { misalignForTest?: number } = {}): Promise<{ bytes: Buffer; direct: boolean | undefined; stagedBytes: number }> {
  const path = join(dir, name);
  await writeFile(path, "");
  const buffered = await open(path, "r+");
  try {
    const writes = await openDirectWrites(path, buffered, options);
    if (!writes) {
      // Without direct writes the caller writes through its handle: the same bytes.
      let at = 0;
      for (const piece of pieces) at += (await buffered.write(piece, 0, piece.byteLength, at)).bytesWritten;
      return { bytes: await readFile(path), direct: undefined, stagedBytes: 0 };
    }
    let at = 0;
    // Appends issued back to back without waiting, as a sink's callers do: they are staged in call order.
    const appends = pieces.map((piece) => {
      const p = writes.append(piece, at);
      at += piece.byteLength;
      return p;
    });
    await Promise.all(appends);
    expect(writes.position).toBe(at);
    await writes.finish();
    expect(writes.open).toBe(false);
    return { bytes: await readFile(path), direct: writes.direct, stagedBytes: writes.stagedBytes };
  } finally {
    await buffered.close();
  }
}

/**
 * Runs `body` on direct writes to a new empty file; where the filesystem takes no O_DIRECT,
 * checks that none were given instead. Closes everything it opened.
 */
async function withDirectWrites(name: string, body: (writes: DirectWrites, path: string) => Promise<void>): Promise<void> {
  const path = join(dir, name);
  await writeFile(path, "");
  const buffered = await open(path, "r+");
  const writes = await openDirectWrites(path, buffered);
  try {
    if (!(await takesODirect(dir))) return expect(writes).toBeUndefined();
    await body(writes!, path);
  } finally {
    await writes?.close();
    await buffered.close();
  }
}

const concat = (pieces: readonly Uint8Array[]) => Buffer.concat(pieces.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength)));

describe("direct writes", () => {
  it.runIf(directWritesAvailable())("write a file front to back past the page cache: pieces of any size, across staging buffers, a partial last block", async () => {
    const direct = await takesODirect(dir);
    // 1 byte, an odd size, exactly a block, more than a staging buffer, many small ones; 13 MiB + 3 bytes in all.
    const sizes = [1, 4095, DIRECT_ALIGNMENT, 5 * MiB + 7, ...Array.from({ length: 300 }, (_, i) => 1000 + ((i * 7919) % 30000)), 7 * MiB];
    const pieces = sizes.map((n, i) => seededBytes(n, i + 1));
    const total = sizes.reduce((a, b) => a + b, 0);
    expect(total % DIRECT_ALIGNMENT).not.toBe(0);
    const { bytes, direct: wentDirect } = await writeThrough("pieces.bin", pieces);
    expect(bytes.equals(concat(pieces))).toBe(true);
    // On a filesystem that takes O_DIRECT (ext4 here), every whole block went past the page cache.
    expect(wentDirect).toBe(direct ? true : undefined);
  });

  it.runIf(directWritesAvailable())("a file of whole blocks only, and an empty one", async () => {
    const pieces = [seededBytes(4 * MiB, 7), seededBytes(4 * MiB, 8)];
    expect((await writeThrough("whole.bin", pieces)).bytes.equals(concat(pieces))).toBe(true);
    expect((await writeThrough("empty.bin", [])).bytes.byteLength).toBe(0);
  });

  it.runIf(directWritesAvailable())("when the kernel refuses a direct write (EINVAL: a misaligned buffer), that buffer and the rest go through the page cache, the same bytes", async () => {
    const direct = await takesODirect(dir);
    // The first piece starts one byte into its buffer, so it is staged: from where it lies (its
    // buffer on a page whenever the allocator maps it so) the kernel would take it directly.
    const pieces = [seededBytes(9 * MiB + 6, 3).subarray(1), seededBytes(123, 4)];
    const { bytes, direct: wentDirect } = await writeThrough("refused.bin", pieces, { misalignForTest: 1 });
    expect(bytes.equals(concat(pieces))).toBe(true);
    expect(wentDirect).toBe(direct ? false : undefined);
  });

  it.runIf(directWritesAvailable())("an append anywhere but the end, or after finish, is refused", async () => {
    await withDirectWrites("order.bin", async (writes, path) => {
      await writes.append(seededBytes(10, 1), 0);
      await expect(writes.append(seededBytes(10, 2), 20)).rejects.toThrow(/direct write at 20, expected 10/);
      await writes.finish();
      await expect(writes.append(seededBytes(10, 2), 10)).rejects.toThrow(/finished/);
      expect((await readFile(path)).equals(Buffer.from(seededBytes(10, 1)))).toBe(true);
    });
  });

  it.runIf(directWritesAvailable())("appends laid out in memory as on disk are written from where they lie (only their partial first and last blocks staged), mixed with staged ones", async () => {
    const direct = await takesODirect(dir);
    // Page-aligned memory (WebAssembly's), each piece placed where its address agrees with its file offset modulo 4096.
    const memory = pageAlignedSharedBytes(64 * MiB);
    const sizes = [100, 3 * MiB + 5, 300 * 1024, 7, 5 * MiB, 256 * 1024 - 1, 9 * MiB + 4095, 1, 2 * MiB];
    let at = 0;
    let cursor = 0;
    const pieces = sizes.map((n, i) => {
      // Every third piece deliberately out of step (staged whole); the others in step.
      const inStep = i % 3 !== 2;
      const shift = (((at - cursor) % DIRECT_ALIGNMENT) + DIRECT_ALIGNMENT + (inStep ? 0 : 8)) % DIRECT_ALIGNMENT;
      const piece = memory.subarray(cursor + shift, cursor + shift + n);
      piece.set(seededBytes(n, i + 40));
      cursor += shift + n;
      at += n;
      return piece;
    });
    const written = await writeThrough("in-place.bin", pieces);
    expect(written.bytes.equals(concat(pieces))).toBe(true);
    expect(written.direct).toBe(direct ? true : undefined);
    if (!direct) return;
    // Staged: the pieces out of step, those under 256 KiB, and at most two partial blocks of each of the others.
    const staged = sizes.filter((n, i) => i % 3 === 2 || n < 256 * 1024).reduce((a, b) => a + b, 0);
    const inPlace = sizes.filter((n, i) => i % 3 !== 2 && n >= 256 * 1024).length;
    expect(written.stagedBytes).toBeGreaterThanOrEqual(staged);
    expect(written.stagedBytes).toBeLessThanOrEqual(staged + inPlace * 2 * DIRECT_ALIGNMENT);
  });

  it.runIf(directWritesAvailable())("memory that agrees with the file offsets but does not start on a page (a Buffer's) is staged once the kernel refuses it, the same bytes", async () => {
    // A large Buffer comes from malloc (usually 16 bytes past a page); if it happens to start on one, the direct writes simply succeed.
    const memory = Buffer.allocUnsafeSlow(12 * MiB);
    const pieces = [seededBytes(1000, 1), seededBytes(5 * MiB, 2), seededBytes(3 * MiB, 3)];
    let at = 0;
    let cursor = 0;
    const laidOut = pieces.map((p) => {
      cursor += (((at - (memory.byteOffset + cursor)) % DIRECT_ALIGNMENT) + DIRECT_ALIGNMENT) % DIRECT_ALIGNMENT;
      const view = new Uint8Array(memory.buffer, memory.byteOffset + cursor, p.byteLength);
      view.set(p);
      cursor += p.byteLength;
      at += p.byteLength;
      return view;
    });
    const written = await writeThrough("not-on-a-page.bin", laidOut);
    expect(written.bytes.equals(concat(pieces))).toBe(true);
    expect(written.direct).toBe((await takesODirect(dir)) ? true : undefined);
  });

  it.runIf(directWritesAvailable())("a file that cannot be opened for direct writes (gone since) gives none: the caller writes through its own handle", async () => {
    const path = join(dir, "gone.bin");
    await writeFile(path, "");
    const buffered = await open(path, "r+");
    try {
      await rm(path);
      expect(await openDirectWrites(path, buffered)).toBeUndefined();
    } finally {
      await buffered.close();
    }
  });

  it("viewLaidOutFor places a view where its address agrees with a file position modulo 4096; pageAlignedSharedBytes is shared memory that starts on a page (the kernel takes a direct write from it)", async () => {
    const memory = pageAlignedSharedBytes(3 * DIRECT_ALIGNMENT + 100);
    expect(memory.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(memory.byteLength).toBe(3 * DIRECT_ALIGNMENT + 100);
    const spare = memory.subarray(37, 37 + 2 * DIRECT_ALIGNMENT + 10 + DIRECT_ALIGNMENT - 1);
    for (const position of [0, 1, 37, 4095, 4096, 123457, 2 ** 40 + 5]) {
      const view = viewLaidOutFor(spare, 2 * DIRECT_ALIGNMENT + 10, position);
      expect((((view.byteOffset - position) % DIRECT_ALIGNMENT) + DIRECT_ALIGNMENT) % DIRECT_ALIGNMENT, `position ${position}`).toBe(0);
      expect(view.byteLength).toBe(2 * DIRECT_ALIGNMENT + 10);
      expect(view.byteOffset - spare.byteOffset).toBeLessThan(DIRECT_ALIGNMENT);
    }
    expect(viewLaidOutFor(spare, 10, undefined).byteOffset).toBe(spare.byteOffset);
    if (!directWritesAvailable() || !(await takesODirect(dir))) return;
    const path = join(dir, "aligned.bin");
    await writeFile(path, "");
    const handle = await open(path, constants.O_WRONLY | constants.O_DIRECT!);
    try {
      memory.fill(9);
      // EINVAL here would mean the memory does not start on a page.
      expect((await handle.write(memory, 0, 2 * DIRECT_ALIGNMENT, 0)).bytesWritten).toBe(2 * DIRECT_ALIGNMENT);
    } finally {
      await handle.close();
    }
  });

  it.runIf(directWritesAvailable())("read gives back appended bytes while appends go on: staged ones from the staging buffer, written ones from the file, across buffers; past the end is refused", async () => {
    await withDirectWrites("read-while-writing.bin", async (writes, path) => {
      const memory = pageAlignedSharedBytes(24 * MiB);
      const sizes = [4097, 3 * MiB + 11, 600 * 1024, 1, 5 * MiB + 5, 123, 2 * MiB];
      const content = Buffer.concat(sizes.map((n, i) => Buffer.from(seededBytes(n, i + 70))));
      let at = 0;
      let cursor = 0;
      const reads: Promise<void>[] = [];
      for (const n of sizes) {
        // Laid out as on disk, so the larger ones are written from where they lie.
        cursor += (((at - cursor) % DIRECT_ALIGNMENT) + DIRECT_ALIGNMENT) % DIRECT_ALIGNMENT;
        const piece = memory.subarray(cursor, cursor + n);
        piece.set(content.subarray(at, at + n));
        void writes.append(piece, at);
        cursor += n;
        at += n;
        // Right after each append (not awaited): the last bytes, a range across everything so far, and the first block.
        for (const [from, length] of [[at - Math.min(n, 5000), Math.min(n, 5000)], [Math.floor(at / 3), Math.floor(at / 2)], [0, Math.min(at, 4096)]] as const) {
          reads.push(
            writes.read(new Uint8Array(length), from).then((back) => {
              expect(Buffer.from(back).equals(content.subarray(from, from + length)), `${length} at ${from} of ${at}`).toBe(true);
            }),
          );
        }
      }
      await Promise.all(reads);
      // Into memory that starts on a page, at an offset on a block (read in place); and a read off a
      // block longer than a bounce buffer.
      const onPage = pageAlignedSharedBytes(2 * MiB);
      expect(Buffer.from(await writes.read(onPage, 4096)).equals(content.subarray(4096, 4096 + 2 * MiB))).toBe(true);
      const long = new Uint8Array(9 * MiB + 3);
      expect(Buffer.from(await writes.read(long, 5)).equals(content.subarray(5, 5 + long.byteLength))).toBe(true);
      await expect(writes.read(new Uint8Array(10), at - 5)).rejects.toThrow(/past the/);
      await writes.finish();
      expect((await readFile(path)).equals(content)).toBe(true);
      expect(writes.direct).toBe(true);
    });
  });

  it.runIf(directWritesAvailable())("openDirectReads reads a file back past the page cache: aligned chunks, the end of the file mid-block, and unaligned targets through the buffered handle", async () => {
    const content = seededBytes(3 * MiB + 777, 5);
    const path = join(dir, "read-back.bin");
    await writeFile(path, content);
    const buffered = await open(path, "r");
    try {
      const reads = await openDirectReads(path, buffered);
      if (!(await takesODirect(dir))) return expect(reads).toBeUndefined();
      const memory = pageAlignedSharedBytes(2 * MiB);
      const cases: [at: number, offset: number, length: number][] = [
        [0, 0, MiB], // aligned
        [2 * MiB, 0, MiB + 777], // to the end of the file, which is not on a block
        [4096, 0, 10], // shorter than a block: all through the buffered handle
        [5, 0, 1000], // an offset off a block
        [8192, 3, 5000], // a target off a page
        [3 * MiB, 4096, 777], // the last partial block alone
      ];
      for (const [at, offset, length] of cases) {
        memory.fill(0xee);
        const into = memory.subarray(offset, offset + length);
        const got = await reads!.read(into, at);
        expect(got).toBe(into);
        expect(Buffer.from(got).equals(Buffer.from(content.subarray(at, at + length))), `${at}+${length} at ${offset}`).toBe(true);
        // Nothing around the target changed.
        expect(memory.subarray(0, offset).every((b) => b === 0xee) && memory.subarray(offset + length).every((b) => b === 0xee), `${at}+${length} at ${offset}`).toBe(true);
      }
      await reads!.close();
    } finally {
      await buffered.close();
    }
  });

  it("STMERGE_DIRECT_IO=0 turns direct writes off", async () => {
    const saved = process.env.STMERGE_DIRECT_IO;
    process.env.STMERGE_DIRECT_IO = "0";
    try {
      expect(directWritesAvailable()).toBe(false);
      const path = join(dir, "off.bin");
      await writeFile(path, "");
      const buffered = await open(path, "r+");
      try {
        expect(await openDirectWrites(path, buffered)).toBeUndefined();
      } finally {
        await buffered.close();
      }
    } finally {
      if (saved === undefined) delete process.env.STMERGE_DIRECT_IO;
      else process.env.STMERGE_DIRECT_IO = saved;
    }
  });
});
