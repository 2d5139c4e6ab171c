import { readFileSync } from "node:fs";
import { chmod, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rawSafetensors, tempDir, writeRaw } from "../test/safetensors-test-helpers.js";
import { isFloatDType, type DType } from "./dtypes.js";
import { decodeToF32 } from "./float-codecs.js";
import { openSafetensors, readSafetensorsHeader } from "./open-safetensors.js";

// Files written by the Python safetensors library (tools/fixtures/safetensors_fixtures.py).
const fixtureDir = new URL("../test/fixtures/safetensors/", import.meta.url);
interface Expected {
  metadata: Record<string, string>;
  tensors: Record<string, { dtype: DType; shape: number[]; values: string[] }>;
}
const expected = JSON.parse(readFileSync(new URL("expected.json", fixtureDir), "utf8")) as Record<string, Expected>;

function valuesOf(bytes: Uint8Array, dtype: DType): string[] {
  if (isFloatDType(dtype)) return Array.from(new Uint32Array(decodeToF32(bytes, dtype).buffer), (b) => b.toString(16).padStart(8, "0"));
  const copy = bytes.slice();
  const b = copy.buffer;
  const view = { I64: () => new BigInt64Array(b), U64: () => new BigUint64Array(b), I32: () => new Int32Array(b), U32: () => new Uint32Array(b), I16: () => new Int16Array(b), U16: () => new Uint16Array(b), I8: () => new Int8Array(b), U8: () => new Uint8Array(b), BOOL: () => new Uint8Array(b) }[dtype as "I64"]();
  return Array.from(view as ArrayLike<number | bigint>, (v) => String(v));
}

describe("reads files written by the Python safetensors library", () => {
  it.each(Object.keys(expected))("%s", async (name) => {
    const want = expected[name]!;
    const source = await openSafetensors(new URL(`${name}.safetensors`, fixtureDir).pathname);
    try {
      expect({ ...source.metadata }).toEqual(want.metadata);
      expect(source.descriptors.map((d) => d.name).sort()).toEqual(Object.keys(want.tensors).sort());
      for (const [key, t] of Object.entries(want.tensors)) {
        const d = source.get(key)!;
        expect(d.dtype, key).toBe(t.dtype);
        expect(d.shape, key).toEqual(t.shape);
        expect(valuesOf(await source.read(key), d.dtype), key).toEqual(t.values);
      }
      // Header padding makes the data block 8-aligned, as the Rust writer does.
      expect(source.header.dataStart % 8).toBe(0);
    } finally {
      await source.close();
    }
  });
});

describe("openSafetensors", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  const header = { a: { dtype: "U8", shape: [4], data_offsets: [0, 4] }, b: { dtype: "U8", shape: [3], data_offsets: [4, 7] } };

  it("reads ranges and into caller buffers", async () => {
    const path = await writeRaw(dir, "ok.safetensors", rawSafetensors(header, new Uint8Array([1, 2, 3, 4, 5, 6, 7])));
    const source = await openSafetensors(path);
    expect(Array.from(await source.readRange("b", 1, 3))).toEqual([6, 7]);
    const into = new Uint8Array(10);
    const got = await source.read("a", into);
    expect(got.buffer).toBe(into.buffer);
    expect(Array.from(got)).toEqual([1, 2, 3, 4]);
    expect(source.fileOffsetOf("b")).toBe(source.header.dataStart + 4);
    expect(source.get("missing")).toBeUndefined();
    await expect(source.read("missing")).rejects.toMatchObject({ code: "TENSOR_NOT_FOUND", file: path });
    await expect(source.readRange("a", 2, 5)).rejects.toMatchObject({ code: "RANGE_OUT_OF_BOUNDS" });
    await expect(source.read("a", new Uint8Array(2))).rejects.toMatchObject({ code: "BUFFER_TOO_SMALL" });
    await source.close();
    await source.close();
    await expect(source.read("a")).rejects.toMatchObject({ code: "SOURCE_CLOSED" });
    expect((await readSafetensorsHeader(path)).tensors.map((t) => t.name)).toEqual(["a", "b"]);
  });

  it("reports missing files, folders and invalid files with typed errors naming the file", async () => {
    const missing = join(dir, "nope.safetensors");
    await expect(openSafetensors(missing)).rejects.toMatchObject({ code: "FILE_NOT_FOUND", file: missing, message: `${missing}: no such file` });
    const folder = join(dir, "folder.safetensors");
    await mkdir(folder);
    await expect(openSafetensors(folder)).rejects.toMatchObject({ file: folder });
    const truncated = await writeRaw(dir, "trunc.safetensors", rawSafetensors(header, 5));
    await expect(openSafetensors(truncated)).rejects.toMatchObject({ code: "SAFETENSORS_TRUNCATED", file: truncated });
    const empty = await writeRaw(dir, "empty.safetensors", new Uint8Array(0));
    await expect(openSafetensors(empty)).rejects.toMatchObject({ code: "SAFETENSORS_TOO_SMALL" });
  });

  // Root reads a mode-0 file anyway, so there is nothing to check there (CI runs as root: skipped).
  it.skipIf(process.getuid?.() === 0)("refuses an unreadable file", async () => {
    const path = await writeRaw(dir, "locked.safetensors", rawSafetensors(header, 7));
    await chmod(path, 0);
    await expect(openSafetensors(path)).rejects.toMatchObject({ code: "FILE_UNREADABLE" });
  });
});
