import * as zlib from "node:zlib";
import { seededBytes } from "@stmerge/test-utils";
import { describe, expect, it } from "vitest";
import { crc32Combine } from "./crc32-combine.js";

const zlibCrc32 = (zlib as unknown as { crc32?: (b: Uint8Array, v?: number) => number }).crc32;

describe.skipIf(!zlibCrc32)("crc32Combine", () => {
  const crc = (b: Uint8Array): number => zlibCrc32!(b) >>> 0;

  it("equals node:zlib's CRC-32 of the concatenation, for empty, short and odd-length pieces", () => {
    for (const [a, b] of [[0, 0], [0, 5], [5, 0], [1, 1], [3, 17], [4096, 1], [1000, 65_537], [77_777, 12_345]] as const) {
      const A = seededBytes(a, a + 7);
      const B = seededBytes(b, b + 11);
      const whole = new Uint8Array(a + b);
      whole.set(A);
      whole.set(B, a);
      expect(crc32Combine(crc(A), crc(B), b), `${a}+${b}`).toBe(crc(whole));
    }
  });

  it("folds many pieces in order into the whole file's CRC-32", () => {
    const pieces = [8, 640, 0, 1, 4_000_000, 3, 250_001].map((n, i) => seededBytes(n, i * 31 + 1));
    let combined = 0;
    for (const p of pieces) combined = crc32Combine(combined, crc(p), p.byteLength);
    expect(combined).toBe(zlibCrc32!(Buffer.concat(pieces)) >>> 0);
  });

  it("handles lengths past 2^32 (zeros: CRC-32 of 4097 MiB of zero bytes, built up by doubling, against node:zlib)", () => {
    // crc(zeros(2n)) = combine(crc(zeros(n)), crc(zeros(n)), n); check that doubling against zlib on
    // small sizes, then go past 2^32 where 32-bit length arithmetic would wrap.
    const zeros = (n: number): number => crc(new Uint8Array(n));
    expect(crc32Combine(zeros(1 << 20), zeros(1 << 20), 1 << 20)).toBe(zeros(2 << 20));
    let length = 4097 * 256;
    let value = zeros(length);
    while (length < 2 ** 32) {
      value = crc32Combine(value, value, length);
      length *= 2;
    }
    // Independent: zlib over the same zeros in 1 MiB pieces (4097 of them), CRC carried along.
    const chunk = new Uint8Array(1 << 20);
    let expected = 0;
    for (let done = 0; done < length; done += chunk.byteLength) expected = zlibCrc32!(chunk, expected);
    expect(value).toBe(expected >>> 0);
  });

  it("refuses a length that is not a byte count", () => {
    expect(() => crc32Combine(0, 0, -1)).toThrow(RangeError);
    expect(() => crc32Combine(0, 0, 0.5)).toThrow(RangeError);
  });
});
