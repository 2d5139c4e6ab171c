import { seededBytes } from "@stmerge/test-utils";
import { describe, expect, it } from "vitest";
import { readAheadChunks } from "./read-ahead-chunks.js";

/** A file in memory that may grow, read with a delay; records the reads in flight. */
function source(file: Uint8Array) {
  let readable = 0;
  let inFlight = 0;
  let mostInFlight = 0;
  const read = async (into: Uint8Array, at: number): Promise<Uint8Array> => {
    expect(at + into.byteLength).toBeLessThanOrEqual(readable);
    mostInFlight = Math.max(mostInFlight, ++inFlight);
    await new Promise((resolve) => setTimeout(resolve, 1));
    into.set(file.subarray(at, at + into.byteLength));
    inFlight--;
    return into;
  };
  return { read, grow: (to: number) => void (readable = to), end: () => readable, mostInFlight: () => mostInFlight };
}

describe("readAheadChunks", () => {
  it("gives the range in order, each chunk unchanged while it is taken, the next read already in flight", async () => {
    const file = seededBytes(1_000_003, 5);
    const s = source(file);
    s.grow(file.byteLength);
    const got: number[] = [];
    let next = 100;
    for await (const { at, bytes } of readAheadChunks(s.read, 100, s.end, 65_536)) {
      expect(at).toBe(next);
      expect(bytes.buffer).toBeInstanceOf(SharedArrayBuffer);
      const held = Uint8Array.from(bytes);
      await new Promise((resolve) => setTimeout(resolve, 3));
      expect(Buffer.compare(held, bytes)).toBe(0);
      expect(Buffer.compare(bytes, file.subarray(at, at + bytes.byteLength))).toBe(0);
      got.push(bytes.byteLength);
      next = at + bytes.byteLength;
    }
    expect(next).toBe(file.byteLength);
    expect(got.slice(0, -1).every((n) => n === 65_536)).toBe(true);
    expect(s.mostInFlight()).toBe(1);
  });

  it("follows an end that grows while it reads, and gives nothing for an empty range", async () => {
    const file = seededBytes(300_000, 9);
    const s = source(file);
    s.grow(50_000);
    let next = 0;
    for await (const { at, bytes } of readAheadChunks(s.read, 0, s.end, 40_000)) {
      expect(Buffer.compare(bytes, file.subarray(at, at + bytes.byteLength))).toBe(0);
      next = at + bytes.byteLength;
      if (next < file.byteLength) s.grow(Math.min(file.byteLength, s.end() + 45_000));
    }
    expect(next).toBe(file.byteLength);
    const none = [];
    for await (const chunk of readAheadChunks(s.read, 300_000, s.end, 40_000)) none.push(chunk);
    expect(none).toEqual([]);
  });

  it("throws a failed read when its chunk is asked for, and waits for the read in flight when left early", async () => {
    let settled = 0;
    const failing = async (into: Uint8Array, at: number) => {
      await new Promise((resolve) => setTimeout(resolve, 2));
      settled++;
      if (at >= 20) throw new Error(`read at ${at} failed`);
      return into;
    };
    const taken: number[] = [];
    await expect(
      (async () => {
        for await (const { at } of readAheadChunks(failing, 0, () => 40, 10)) taken.push(at);
      })(),
    ).rejects.toThrow("read at 20 failed");
    expect(taken).toEqual([0, 10]);
    settled = 0;
    for await (const { at } of readAheadChunks(failing, 0, () => 40, 10)) if (at === 0) break;
    // The read ahead (at 10) had settled by the time the loop was left.
    expect(settled).toBe(2);
  });
});
