import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir, writeRaw } from "../test/safetensors-test-helpers.js";
import { isStmergeError, SafetensorsError } from "./errors.js";
import { jsonTopLevelKeys } from "./json-top-level-keys.js";
import { openSafetensors } from "./open-safetensors.js";
import { parseSafetensorsHeader, parseSafetensorsHeaderLength } from "./parse-safetensors-header.js";
import { planSafetensorsLayout } from "./safetensors-writer.js";

// A small valid file to mutate: three tensors and metadata.
function validFile(): Uint8Array {
  const descriptors = [
    { name: "a.weight", dtype: "F16" as const, shape: [2, 3], byteLength: 12 },
    { name: "b", dtype: "U8" as const, shape: [5], byteLength: 5 },
    { name: "c", dtype: "F32" as const, shape: [], byteLength: 4 },
  ];
  const layout = planSafetensorsLayout(descriptors, { format: "pt" });
  const out = new Uint8Array(layout.totalSize);
  out.set(layout.headerBytes);
  for (let i = layout.dataStart; i < out.length; i++) out[i] = i & 0xff;
  return out;
}
const VALID = validFile();

/** Random edits: byte overwrites (biased to the header), truncation, insertion, a new length prefix. */
const mutation = fc.oneof(
  fc.array(fc.record({ at: fc.nat({ max: VALID.length - 1 }), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 8 }).map((edits) => (bytes: Uint8Array) => {
    const out = bytes.slice();
    for (const { at, value } of edits) out[at] = value;
    return out;
  }),
  fc.nat({ max: VALID.length - 1 }).map((n) => (bytes: Uint8Array) => bytes.slice(0, n)),
  fc.tuple(fc.nat({ max: VALID.length }), fc.uint8Array({ minLength: 1, maxLength: 16 })).map(([at, extra]) => (bytes: Uint8Array) => {
    const out = new Uint8Array(bytes.length + extra.length);
    out.set(bytes.subarray(0, at));
    out.set(extra, at);
    out.set(bytes.subarray(at), at + extra.length);
    return out;
  }),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map((n) => (bytes: Uint8Array) => {
    const out = bytes.slice();
    new DataView(out.buffer).setBigUint64(0, n, true);
    return out;
  }),
  // Replace one ASCII character of the JSON with another JSON-significant character.
  fc.tuple(fc.integer({ min: 8, max: 200 }), fc.constantFrom(..."{}[]\",:0123456789-. eE\\")).map(([at, ch]) => (bytes: Uint8Array) => {
    const out = bytes.slice();
    if (at < out.length) out[at] = ch.charCodeAt(0);
    return out;
  }),
);

/** Parses in-memory bytes as openSafetensors does; returns the header or the thrown error. */
function parseBytes(bytes: Uint8Array): { ok: true; dataStart: number; ends: number[] } | { ok: false; error: unknown } {
  try {
    const n = parseSafetensorsHeaderLength(bytes.subarray(0, 8), bytes.length, "m.safetensors");
    // The only allocation sized by file contents is the header buffer: it must fit in the file.
    expect(8 + n).toBeLessThanOrEqual(bytes.length);
    const header = parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.length, "m.safetensors");
    return { ok: true, dataStart: header.dataStart, ends: header.tensors.map((t) => header.dataStart + t.dataOffset + t.byteLength) };
  } catch (error) {
    return { ok: false, error };
  }
}

describe("mutated safetensors files (property tests)", () => {
  it("the unmutated file parses", () => {
    expect(parseBytes(VALID).ok).toBe(true);
  });

  it("never throw anything but a SafetensorsError, and accepted headers stay inside the file", () => {
    fc.assert(
      fc.property(mutation, (mutate) => {
        const bytes = mutate(VALID);
        const result = parseBytes(bytes);
        if (result.ok) {
          for (const end of result.ends) expect(end).toBeLessThanOrEqual(bytes.length);
          // Contiguous tensors ending at EOF: reading them all allocates at most the file size.
          expect(Math.max(result.dataStart, ...result.ends)).toBe(bytes.length);
        } else {
          expect(result.error).toBeInstanceOf(SafetensorsError);
          expect(isStmergeError(result.error)).toBe(true);
          expect((result.error as Error).message).not.toContain("\n");
        }
      }),
      { numRuns: 2000, seed: 20261123 },
    );
  });

  it("a header length beyond the file is refused before anything is allocated", () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.nat({ max: 1 << 20 }), (n, size) => {
        const prefix = new Uint8Array(8);
        new DataView(prefix.buffer).setBigUint64(0, n, true);
        let accepted: number | undefined;
        try {
          accepted = parseSafetensorsHeaderLength(prefix, size, "m.safetensors");
        } catch (error) {
          expect(error).toBeInstanceOf(SafetensorsError);
        }
        if (accepted !== undefined) expect(8 + accepted).toBeLessThanOrEqual(size);
        else expect(n > BigInt(Math.max(0, size - 8)) || size < 8).toBe(true);
      }),
      { numRuns: 2000, seed: 7 },
    );
  });

  describe("through the file reader", () => {
    let dir: string;
    let cleanup: () => Promise<void>;
    beforeAll(async () => ({ dir, cleanup } = await tempDir()));
    afterAll(() => cleanup());

    it("opens or fails with a StmergeError; every tensor of an opened file reads back", async () => {
      let i = 0;
      await fc.assert(
        fc.asyncProperty(mutation, async (mutate) => {
          const path = await writeRaw(dir, `m${i++}.safetensors`, mutate(VALID));
          let source;
          try {
            source = await openSafetensors(path);
          } catch (error) {
            expect(isStmergeError(error)).toBe(true);
            return;
          }
          try {
            for (const d of source.descriptors) expect((await source.read(d.name)).byteLength).toBe(d.byteLength);
          } finally {
            await source.close();
          }
        }),
        { numRuns: 150, seed: 99 },
      );
    });
  });
});

describe("jsonTopLevelKeys", () => {
  it("lists the same keys as JSON.parse for any object without duplicates", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: "binary" }), fc.jsonValue({ maxDepth: 3 })), fc.constantFrom(0, 2), (object, indent) => {
        const text = JSON.stringify(object, null, indent);
        expect(jsonTopLevelKeys(text).sort()).toEqual(Object.keys(JSON.parse(text) as object).sort());
      }),
      { numRuns: 500, seed: 3 },
    );
  });

  it("sees duplicates that JSON.parse hides", () => {
    expect(jsonTopLevelKeys('{"a": {"a": 1, "b": [{"a": 2}]}, "b\\"": "x,\\"a\\":", "a": 3}')).toEqual(["a", 'b"', "a"]);
  });
});
