import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { bf16BitsToF32, convertDType, decodeToF32, encodeFromF32, f16BitsToF32, f32ToBF16Bits, f32ToF16Bits } from "./float-codecs.js";
import type { DType } from "./dtypes.js";

// Reference tables written by tools/fixtures/float_tables.py with PyTorch 2.13 (CPU).
const tableDir = new URL("../test/fixtures/float-tables/", import.meta.url);
function table(name: string): Uint8Array {
  const bytes = gunzipSync(readFileSync(new URL(name, tableDir)));
  // Copy into a fresh aligned buffer so typed views work.
  return new Uint8Array(bytes);
}
const f32Of = (b: Uint8Array) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const u32Of = (b: Uint8Array) => new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4);
const u16Of = (b: Uint8Array) => new Uint16Array(b.buffer, b.byteOffset, b.byteLength / 2);

/** Bit-exact comparison, except that any NaN matches any NaN. Returns the first few mismatches. */
function mismatches(actual: Float32Array, expected: Float32Array, label: (i: number) => string): string[] {
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length && bad.length < 5; i++) {
    if (Number.isNaN(expected[i]) && Number.isNaN(actual[i])) continue;
    if (a[i] !== e[i]) bad.push(`${label(i)}: got 0x${a[i]!.toString(16)} expected 0x${e[i]!.toString(16)}`);
  }
  return bad;
}

function codeMismatches(actual: ArrayLike<number>, expected: ArrayLike<number>, isNaN: (code: number) => boolean, input: Uint32Array): string[] {
  const bad: string[] = [];
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length && bad.length < 5; i++) {
    if (isNaN(expected[i]!) && isNaN(actual[i]!)) continue;
    if (actual[i] !== expected[i]) bad.push(`f32 0x${input[i]!.toString(16)}: got 0x${actual[i]!.toString(16)} expected 0x${expected[i]!.toString(16)}`);
  }
  return bad;
}

describe("decode every bit pattern against PyTorch", () => {
  const all16 = new Uint8Array(65536 * 2);
  new Uint16Array(all16.buffer).forEach((_, i, arr) => (arr[i] = i));
  const all8 = Uint8Array.from({ length: 256 }, (_, i) => i);

  it.each([
    ["F16", all16, "f16-decode.f32.gz"],
    ["BF16", all16, "bf16-decode.f32.gz"],
    ["F8_E4M3", all8, "e4m3-decode.f32.gz"],
    ["F8_E5M2", all8, "e5m2-decode.f32.gz"],
  ] as const)("%s: all patterns match", (dtype, codes, file) => {
    const expected = f32Of(table(file));
    const actual = decodeToF32(codes, dtype);
    expect(actual.length).toBe(expected.length);
    expect(mismatches(actual, expected, (i) => `${dtype} 0x${i.toString(16)}`)).toEqual([]);
  });

  it("scalar helpers agree with the tables", () => {
    const f16 = f32Of(table("f16-decode.f32.gz"));
    const bf16 = f32Of(table("bf16-decode.f32.gz"));
    for (const code of [0, 1, 0x3c00, 0x7bff, 0x7c00, 0xfc00, 0x8001, 0x03ff, 0x0400]) expect(f16BitsToF32(code)).toBe(f16[code]);
    for (const code of [0, 1, 0x3f80, 0x7f7f, 0x7f80, 0xff80, 0x8001]) expect(bf16BitsToF32(code)).toBe(bf16[code]);
    expect(Number.isNaN(f16BitsToF32(0x7e00))).toBe(true);
  });
});

describe("encode a dense F32 sample against PyTorch", () => {
  const inputBits = u32Of(table("f32-samples.u32.gz"));
  const input = new Float32Array(inputBits.buffer, inputBits.byteOffset, inputBits.length);

  it("has a dense sample with the edge cases", () => {
    expect(input.length).toBeGreaterThan(20000);
    expect(Array.from(inputBits.subarray(0, 4))).toEqual([0, 0x80000000, 0x7f800000, 0xff800000]);
  });

  it("F16: round to nearest even, subnormals, overflow to Inf at 65520", () => {
    const expected = u16Of(table("f32-to-f16.u16.gz"));
    const actual = u16Of(encodeFromF32(input, "F16"));
    expect(codeMismatches(actual, expected, (c) => (c & 0x7c00) === 0x7c00 && (c & 0x3ff) !== 0, inputBits)).toEqual([]);
  });

  it("BF16: round to nearest even", () => {
    const expected = u16Of(table("f32-to-bf16.u16.gz"));
    const actual = u16Of(encodeFromF32(input, "BF16"));
    expect(codeMismatches(actual, expected, (c) => (c & 0x7f80) === 0x7f80 && (c & 0x7f) !== 0, inputBits)).toEqual([]);
  });

  it("F8_E4M3 (fn): saturates to ±448 like torch, NaN is S.1111.111", () => {
    const expected = table("f32-to-e4m3.u8.gz");
    const actual = encodeFromF32(input, "F8_E4M3");
    expect(codeMismatches(actual, expected, (c) => (c & 0x7f) === 0x7f, inputBits)).toEqual([]);
  });

  it("F8_E5M2: overflow to Inf", () => {
    const expected = table("f32-to-e5m2.u8.gz");
    const actual = encodeFromF32(input, "F8_E5M2");
    expect(codeMismatches(actual, expected, (c) => (c & 0x7c) === 0x7c && (c & 3) !== 0, inputBits)).toEqual([]);
  });

  it("scalar helpers agree with the bulk path", () => {
    const f16 = u16Of(encodeFromF32(input, "F16"));
    const bf16 = u16Of(encodeFromF32(input, "BF16"));
    for (let i = 0; i < input.length; i += 7) {
      expect(f32ToF16Bits(input[i]!)).toBe(f16[i]);
      expect(f32ToBF16Bits(input[i]!)).toBe(bf16[i]);
    }
  });

  it("decode(encode(x)) is the identity on every F16 value", () => {
    const codes = new Uint16Array(65536).map((_, i) => i);
    const back = u16Of(encodeFromF32(decodeToF32(new Uint8Array(codes.buffer), "F16"), "F16"));
    for (let i = 0; i < 65536; i++) {
      const isNaN = (i & 0x7c00) === 0x7c00 && (i & 0x3ff) !== 0;
      if (!isNaN && back[i] !== i) expect.fail(`F16 0x${i.toString(16)} came back as 0x${back[i]!.toString(16)}`);
    }
  });
});

describe("other dtypes", () => {
  it("F64 → F32 rounds to nearest, keeps NaN and Inf", () => {
    const values = new Float64Array([1 / 3, -0, Infinity, -Infinity, NaN, 1e300, 1e-300, 16777217]);
    const out = decodeToF32(new Uint8Array(values.buffer), "F64");
    expect(Array.from(out)).toEqual([Math.fround(1 / 3), -0, Infinity, -Infinity, NaN, Infinity, 0, 16777216]);
    const back = new Float64Array(encodeFromF32(out, "F64").buffer);
    expect(back[0]).toBe(Math.fround(1 / 3));
  });

  it.each([
    ["I8", new Int8Array([-128, -1, 0, 127])],
    ["U8", new Uint8Array([0, 1, 255])],
    ["I16", new Int16Array([-32768, -1, 0, 32767])],
    ["U16", new Uint16Array([0, 65535])],
    ["I32", new Int32Array([-2147483648, -1, 0, 2147483647])],
    ["U32", new Uint32Array([0, 4294967295])],
  ] as const)("%s decodes by value", (dtype, values) => {
    const out = decodeToF32(new Uint8Array(values.buffer), dtype as DType);
    expect(Array.from(out)).toEqual(Array.from(values, (v) => Math.fround(v)));
  });

  it("I64 / U64 decode by value, negatives included", () => {
    const i64 = new BigInt64Array([-1n, 0n, 5n, -5n, -(2n ** 40n), 2n ** 62n, -(2n ** 63n)]);
    expect(Array.from(decodeToF32(new Uint8Array(i64.buffer), "I64"))).toEqual([-1, 0, 5, -5, -(2 ** 40), 2 ** 62, -(2 ** 63)]);
    const u64 = new BigUint64Array([0n, 2n ** 64n - 1n, 4294967296n]);
    expect(Array.from(decodeToF32(new Uint8Array(u64.buffer), "U64"))).toEqual([0, 2 ** 64, 4294967296]);
  });

  it("BOOL decodes to 0/1", () => {
    expect(Array.from(decodeToF32(new Uint8Array([0, 1, 2, 255]), "BOOL"))).toEqual([0, 1, 1, 1]);
  });

  it("handles misaligned input and output views", () => {
    const buf = new Uint8Array(9);
    const inner = buf.subarray(1);
    inner.set(new Uint8Array(new Float32Array([1.5, -2]).buffer));
    expect(Array.from(decodeToF32(inner, "F32"))).toEqual([1.5, -2]);
    const out = new Uint8Array(5).subarray(1);
    encodeFromF32(new Float32Array([1, -2]), "F16", out);
    expect(Array.from(out)).toEqual([0x00, 0x3c, 0x00, 0xc0]);
  });

  it("convertDType goes through F32", () => {
    const f16 = convertDType(new Uint8Array(new Float32Array([1, 0.5, 65520]).buffer), "F32", "F16");
    expect(Array.from(new Uint16Array(f16.buffer))).toEqual([0x3c00, 0x3800, 0x7c00]);
    expect(Array.from(new Uint16Array(convertDType(f16, "F16", "BF16").buffer))).toEqual([0x3f80, 0x3f00, 0x7f80]);
  });

  it("rejects bad arguments with typed errors", () => {
    expect(() => decodeToF32(new Uint8Array(3), "F16")).toThrow(expect.objectContaining({ code: "KERNEL_LENGTH_MISMATCH" }));
    expect(() => encodeFromF32(new Float32Array(2), "I32")).toThrow(expect.objectContaining({ code: "DTYPE_NOT_ENCODABLE" }));
    expect(() => decodeToF32(new Uint8Array(4), "X" as DType)).toThrow(expect.objectContaining({ code: "DTYPE_UNKNOWN" }));
    expect(() => decodeToF32(new Uint8Array(4), "F32", new Float32Array(2))).toThrow(expect.objectContaining({ code: "KERNEL_LENGTH_MISMATCH" }));
  });
});
