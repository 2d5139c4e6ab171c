import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { orderCheckingTap, seededBytes } from "@stmerge/test-utils";
import { createOutputFeed } from "./output-feed.js";

/** A file of `size` bytes in memory, written front to back, and a tap recording what it is fed. */
function setup(size: number, dataStart: number) {
  const file = new Uint8Array(size);
  const fed: { offset: number; bytes: number[] }[] = [];
  let started: { size: number; head: number[] } | undefined;
  let reads = 0;
  const tap = {
    start: (f: { size: number; head: Uint8Array }) => void (started = { size: f.size, head: [...f.head] }),
    bytes: async (chunk: Uint8Array, offset: number) => {
      await new Promise((r) => setTimeout(r, 0));
      fed.push({ offset, bytes: [...chunk] });
    },
  };
  const readWritten = async (into: Uint8Array, offset: number) => {
    reads++;
    into.set(file.subarray(offset, offset + into.byteLength));
    return into;
  };
  const feed = createOutputFeed(tap, { size, dataStart, path: "out.safetensors" }, readWritten);
  /** Writes `bytes` at `offset` into the file, then tells the feed (as convert does when not live). */
  const write = async (offset: number, bytes: number[]) => {
    file.set(bytes, offset);
    await feed.written(Uint8Array.from(bytes), offset);
  };
  const concatenated = () => {
    const out: number[] = [];
    for (const f of fed) {
      expect(f.offset).toBe(out.length);
      out.push(...f.bytes);
    }
    return out;
  };
  return { feed, write, concatenated, started: () => started, reads: () => reads };
}

describe("createOutputFeed", () => {
  it("header known first: the tap takes the header, then every write as it is made; nothing is read back", async () => {
    const { feed, write, concatenated, started, reads } = setup(8, 3);
    await feed.start(Uint8Array.from([9, 9, 9]));
    await write(3, [1, 2]);
    expect(feed.live).toBe(true);
    await write(5, [3, 4, 5]);
    await feed.finish();
    expect(started()).toEqual({ size: 8, head: [9, 9, 9] });
    expect(concatenated()).toEqual([9, 9, 9, 1, 2, 3, 4, 5]);
    expect(reads()).toBe(0);
  });

  it("header known late: what was written before is read back, later writes (also during the catch-up) are fed in order", async () => {
    const { feed, write, concatenated, reads } = setup(10, 2);
    // A placeholder header is on disk; the final one comes with start.
    await write(2, [1, 2, 3]);
    await write(5, [4]);
    expect(feed.live).toBe(false);
    void feed.start(Uint8Array.from([7, 7]));
    // Written while the catch-up runs: it must be read back too, or fed once live, never twice.
    await write(6, [5, 6]);
    await write(8, [8, 9]);
    await feed.finish();
    expect(concatenated()).toEqual([7, 7, 1, 2, 3, 4, 5, 6, 8, 9]);
    expect(reads()).toBeGreaterThan(0);
  });

  it("header known after the last write: the whole data section is read back", async () => {
    const { feed, write, concatenated } = setup(6, 1);
    await write(1, [1, 2, 3, 4, 5]);
    void feed.start(Uint8Array.from([0]));
    await feed.finish();
    expect(concatenated()).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it("refuses a header of another length than the reserved one, and finish before start", async () => {
    const { feed } = setup(6, 2);
    await expect(feed.finish()).rejects.toThrow(/before start/);
    expect(() => feed.start(new Uint8Array(3))).toThrow(/3-byte header where 2 bytes were reserved/);
  });

  it("a failing read-back surfaces at finish", async () => {
    const feed = createOutputFeed({ bytes: () => undefined }, { size: 4, dataStart: 1, path: "out" }, async () => {
      throw new Error("read failed");
    });
    await feed.written(Uint8Array.from([1, 2, 3]), 1);
    void feed.start(Uint8Array.from([0]));
    await expect(feed.finish()).rejects.toThrow("read failed");
  });

  it("catches up over several 16 MiB chunks (the next read while the tap takes one) while writes go on, then goes live", async () => {
    const size = 40 * 2 ** 20 + 12345;
    const dataStart = 1000;
    const file = seededBytes(size, 3);
    const tap = orderCheckingTap();
    // What is on disk: only bytes already written may be read back.
    let onDisk = dataStart;
    const readWritten = async (into: Uint8Array, offset: number) => {
      expect(offset + into.byteLength).toBeLessThanOrEqual(onDisk);
      await new Promise((resolve) => setTimeout(resolve, 0));
      into.set(file.subarray(offset, offset + into.byteLength));
      return into;
    };
    const feed = createOutputFeed(tap, { size, dataStart, path: "out.safetensors" }, readWritten);
    let at = dataStart;
    const writeUpTo = async (end: number) => {
      while (at < end) {
        const n = Math.min(2 ** 20, end - at);
        onDisk = at + n;
        await feed.written(file.subarray(at, at + n), at);
        at += n;
      }
    };
    // 30 MiB written before the header is final, the rest while the catch-up runs.
    await writeUpTo(30 * 2 ** 20);
    void feed.start(file.subarray(0, dataStart));
    await writeUpTo(size);
    await feed.finish();
    expect(feed.live).toBe(true);
    expect(tap.fed).toBe(size);
    expect(tap.sha256()).toBe(createHash("sha256").update(file).digest("hex"));
  });
});
