import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PyStorage, PyTensor } from "./py-values.js";
import { isContiguous, readStridedTensor } from "./read-strided-tensor.js";

let dir = "";
let path = "";
const STORAGE_ELEMENTS = 512;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "strided-"));
  path = join(dir, "storage.bin");
  // 16 bytes of header junk, then 512 int16 elements whose value is their index.
  const bytes = new Uint8Array(16 + STORAGE_ELEMENTS * 2);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < STORAGE_ELEMENTS; i++) view.setUint16(16 + i * 2, i, true);
  await writeFile(path, bytes);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Element indices of a view in row-major order, computed the obvious way. */
function naiveIndices(shape: number[], stride: number[], offset: number): number[] {
  const out: number[] = [];
  const total = shape.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let index = offset;
    for (let d = shape.length - 1; d >= 0; d--) {
      index += (rest % shape[d]!) * stride[d]!;
      rest = Math.floor(rest / shape[d]!);
    }
    out.push(index);
  }
  return out;
}

describe("readStridedTensor", () => {
  it("matches a naive gather for random shapes, strides and offsets (views that fit the storage)", async () => {
    const handle = await open(path, "r");
    const storage = new PyStorage("0", "I16", "int16", 2, STORAGE_ELEMENTS * 2, "cpu");
    const view = fc
      .tuple(fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 4 }), fc.array(fc.integer({ min: 0, max: 12 }), { minLength: 4, maxLength: 4 }), fc.integer({ min: 0, max: 40 }))
      .map(([shape, strides, offset]) => ({ shape, stride: strides.slice(0, shape.length), offset }))
      .filter(({ shape, stride, offset }) => naiveIndices(shape, stride, offset).every((i) => i < STORAGE_ELEMENTS));
    try {
      await fc.assert(
        fc.asyncProperty(view, async ({ shape, stride, offset }) => {
          const tensor = new PyTensor(storage, "I16", "int16", 2, offset, shape, stride);
          const bytes = await readStridedTensor(handle, { fileOffset: 16, byteLength: STORAGE_ELEMENTS * 2 }, tensor, path);
          const got = [...new Uint16Array(bytes.slice().buffer)];
          expect(got).toEqual(naiveIndices(shape, stride, offset));
          const sliced = await readStridedTensor(handle, { fileOffset: 16, byteLength: STORAGE_ELEMENTS * 2 }, tensor, path, { maxSpanBytes: 8 });
          expect(sliced).toEqual(bytes);
          const swapped = await readStridedTensor(handle, { fileOffset: 16, byteLength: STORAGE_ELEMENTS * 2 }, tensor, path, { bigEndian: true });
          expect([...swapped]).toEqual([...bytes].map((_, i, a) => a[i ^ 1]!));
        }),
        { numRuns: 300, seed: 7 },
      );
    } finally {
      await handle.close();
    }
  });

  it("knows contiguous layouts, including size-1 dims with any stride", () => {
    const s = new PyStorage("0", "F32", "float32", 4, 400, "cpu");
    expect(isContiguous(new PyTensor(s, "F32", "float32", 4, 0, [2, 3], [3, 1]))).toBe(true);
    expect(isContiguous(new PyTensor(s, "F32", "float32", 4, 0, [2, 1, 3], [3, 99, 1]))).toBe(true);
    expect(isContiguous(new PyTensor(s, "F32", "float32", 4, 0, [3, 2], [1, 3]))).toBe(false);
    expect(isContiguous(new PyTensor(s, "F32", "float32", 4, 0, [], []))).toBe(true);
  });
});

describe("extractTensorFromStorage", () => {
  it("agrees with readStridedTensor for random views", async () => {
    const { extractTensorFromStorage } = await import("./read-strided-tensor.js");
    const { readFile } = await import("node:fs/promises");
    const storageBytes = new Uint8Array(await readFile(path)).subarray(16);
    const handle = await open(path, "r");
    const storage = new PyStorage("0", "I16", "int16", 2, STORAGE_ELEMENTS * 2, "cpu");
    try {
      await fc.assert(
        fc.asyncProperty(fc.array(fc.integer({ min: 1, max: 5 }), { maxLength: 3 }), fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 3, maxLength: 3 }), fc.integer({ min: 0, max: 30 }), fc.boolean(), async (shape, strides, offset, bigEndian) => {
          const stride = strides.slice(0, shape.length);
          if (naiveIndices(shape, stride, offset).some((i) => i >= STORAGE_ELEMENTS)) return;
          const tensor = new PyTensor(storage, "I16", "int16", 2, offset, shape, stride);
          const fromFile = await readStridedTensor(handle, { fileOffset: 16, byteLength: STORAGE_ELEMENTS * 2 }, tensor, path, { bigEndian });
          expect(extractTensorFromStorage(storageBytes, tensor, { bigEndian })).toEqual(fromFile);
        }),
        { numRuns: 200, seed: 11 },
      );
    } finally {
      await handle.close();
    }
  });
});
