import { describe, expect, it } from "vitest";
import { rawSafetensors } from "../test/safetensors-test-helpers.js";
import { REFERENCE_HEADER_CASES } from "../test/reference-header-cases.js";
import { MAX_SAFETENSORS_HEADER_BYTES, parseSafetensorsHeader, parseSafetensorsHeaderLength } from "./parse-safetensors-header.js";

/** Parses in-memory file bytes the way openSafetensors does. */
function parse(bytes: Uint8Array) {
  const n = parseSafetensorsHeaderLength(bytes.subarray(0, 8), bytes.byteLength, "x.safetensors");
  return parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, "x.safetensors");
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    const e = error as { code?: string; file?: string; message: string };
    expect(e.file).toBe("x.safetensors");
    expect(e.message.startsWith("x.safetensors: ")).toBe(true);
    expect(e.message).not.toContain("\n");
    return e.code ?? "no code";
  }
  return "no error";
}

const t = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

describe("parseSafetensorsHeader accepts valid headers", () => {
  it("orders tensors by offset and exposes metadata", () => {
    const h = parse(rawSafetensors({ __metadata__: { a: "1" }, b: t("F32", [2], 8, 16), a: t("F16", [2, 2], 0, 8) }, 16));
    expect(h.tensors.map((x) => [x.name, x.dataOffset, x.byteLength])).toEqual([
      ["a", 0, 8],
      ["b", 8, 8],
    ]);
    expect({ ...h.metadata }).toEqual({ a: "1" });
    expect(h.dataStart).toBe(8 + h.headerLength);
  });

  it("accepts 0-d, empty and zero-length tensors and an empty header", () => {
    expect(parse(rawSafetensors({ s: t("F32", [], 0, 4), e: t("F16", [0, 3], 4, 4) }, 4)).tensors).toHaveLength(2);
    expect(parse(rawSafetensors({})).tensors).toEqual([]);
    expect(parse(rawSafetensors("{}   ")).tensors).toEqual([]);
  });
});

describe("parseSafetensorsHeader refuses every violation with its code", () => {
  const cases: [string, Uint8Array, string][] = [
    ["file shorter than 8 bytes", new Uint8Array(5), "SAFETENSORS_TOO_SMALL"],
    ["header length above 100 MB", rawSafetensors({}, 0, BigInt(MAX_SAFETENSORS_HEADER_BYTES + 1)), "SAFETENSORS_HEADER_TOO_LARGE"],
    ["header length of 2^64-1", rawSafetensors({}, 0, 2n ** 64n - 1n), "SAFETENSORS_HEADER_TOO_LARGE"],
    ["header length past end of file", rawSafetensors({}, 0, 1000n), "SAFETENSORS_HEADER_TRUNCATED"],
    ["header not UTF-8", rawSafetensors(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x7b, 0x7d, 0x7d])), "SAFETENSORS_HEADER_NOT_UTF8"],
    ["header not JSON", rawSafetensors("{not json}"), "SAFETENSORS_HEADER_NOT_JSON"],
    ["header of random bytes", rawSafetensors(new Uint8Array([0x50, 0x4b, 0x03, 0x04])), "SAFETENSORS_HEADER_NOT_JSON"],
    ["header JSON an array", rawSafetensors("[1,2]"), "SAFETENSORS_HEADER_NOT_OBJECT"],
    ["header JSON null", rawSafetensors("null"), "SAFETENSORS_HEADER_NOT_OBJECT"],
    ["header JSON a string", rawSafetensors('"{}"'), "SAFETENSORS_HEADER_NOT_OBJECT"],
    ["header with leading whitespace", rawSafetensors(' {"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1), "SAFETENSORS_HEADER_NOT_JSON"],
    ["duplicate tensor names", rawSafetensors('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}', 2), "SAFETENSORS_DUPLICATE_NAME"],
    ["unknown dtype", rawSafetensors({ a: t("F128", [1], 0, 16) }, 16), "SAFETENSORS_UNKNOWN_DTYPE"],
    ["entry not an object", rawSafetensors({ a: [1, 2] }), "SAFETENSORS_BAD_ENTRY"],
    ["negative dimension", rawSafetensors({ a: t("U8", [-1], 0, 0) }), "SAFETENSORS_BAD_SHAPE"],
    ["fractional dimension", rawSafetensors({ a: t("U8", [1.5], 0, 0) }), "SAFETENSORS_BAD_SHAPE"],
    ["shape not an array", rawSafetensors({ a: { dtype: "U8", shape: 4, data_offsets: [0, 4] } }, 4), "SAFETENSORS_BAD_SHAPE"],
    ["offsets not a pair", rawSafetensors({ a: { dtype: "U8", shape: [1], data_offsets: [0] } }, 1), "SAFETENSORS_BAD_OFFSETS"],
    ["end before begin", rawSafetensors({ a: t("U8", [0], 4, 0) }, 4), "SAFETENSORS_BAD_OFFSETS"],
    ["size mismatch", rawSafetensors({ a: t("F32", [3], 0, 8) }, 8), "SAFETENSORS_SIZE_MISMATCH"],
    ["overflowing shape product", rawSafetensors({ a: t("F64", [2 ** 30, 2 ** 30, 2 ** 10], 0, 8) }, 8), "SAFETENSORS_SIZE_MISMATCH"],
    ["overlap", rawSafetensors({ a: t("U8", [4], 0, 4), b: t("U8", [4], 2, 6) }, 6), "SAFETENSORS_HEADER_OVERLAP"],
    ["gap", rawSafetensors({ a: t("U8", [4], 0, 4), b: t("U8", [4], 6, 10) }, 10), "SAFETENSORS_HEADER_GAP"],
    ["data not starting at 0", rawSafetensors({ a: t("U8", [4], 4, 8) }, 8), "SAFETENSORS_HEADER_GAP"],
    ["trailing bytes", rawSafetensors({ a: t("U8", [4], 0, 4) }, 5), "SAFETENSORS_TRAILING_BYTES"],
    ["truncated data", rawSafetensors({ a: t("U8", [4], 0, 4) }, 3), "SAFETENSORS_TRUNCATED"],
    ["metadata not an object", rawSafetensors({ __metadata__: "x" }), "SAFETENSORS_BAD_METADATA"],
    ["metadata value not a string", rawSafetensors({ __metadata__: { a: 1 } }), "SAFETENSORS_BAD_METADATA"],
  ];
  it.each(cases)("%s", (_name, bytes, code) => {
    expect(codeOf(() => parse(bytes))).toBe(code);
  });
});

describe("parseSafetensorsHeader matches the reference on strictness", () => {
  it.each(REFERENCE_HEADER_CASES)("$name → $code", ({ header, code }) => {
    const bytes = rawSafetensors(header, 4);
    expect(codeOf(() => parse(bytes))).toBe(code ?? "no error");
  });

  it("reads __metadata__: null as no metadata", () => {
    expect({ ...parse(rawSafetensors('{"__metadata__":null,"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', 4)).metadata }).toEqual({});
  });

  it("refuses a million-deep unknown field with one line, without exhausting the stack", () => {
    const deep = `{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}}`;
    expect(codeOf(() => parse(rawSafetensors(deep, 4)))).toBe("SAFETENSORS_HEADER_TOO_DEEP");
  });
});
