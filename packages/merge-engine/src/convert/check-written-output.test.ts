import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSafetensors, readFully, writeSafetensors } from "@stmerge/core-tensors";
import { checkTensorDigest, checkWrittenHeader, checkWrittenTensor } from "./check-written-output.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "check-written-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const tensors = [
  { name: "a", dtype: "F32" as const, shape: [2], data: new Uint8Array(new Float32Array([1, 2]).buffer) },
  { name: "b", dtype: "U8" as const, shape: [3], data: Uint8Array.from([7, 8, 9]) },
];
const descriptors = tensors.map(({ name, dtype, shape, data }) => ({ name, dtype, shape, byteLength: data.byteLength }));
// The reference CRC: zlib's, independent of the code under test.
const zlibCrc32 = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;

/** A written file with its head bytes, opened r+ as the writer's temp handle would be. */
async function written(name: string): Promise<{ path: string; head: Uint8Array; offsetOfB: number }> {
  const path = join(dir, name);
  await writeSafetensors(path, tensors, { k: "v" });
  const source = await openSafetensors(path);
  const dataStart = source.header.dataStart;
  const offsetOfB = source.fileOffsetOf("b");
  await source.close();
  return { path, head: new Uint8Array((await readFile(path)).subarray(0, dataStart)), offsetOfB };
}

async function withHandle<T>(path: string, run: (handle: Awaited<ReturnType<typeof open>>) => Promise<T>): Promise<T> {
  const handle = await open(path, "r+");
  try {
    return await run(handle);
  } finally {
    await handle.close();
  }
}

describe("checkWrittenHeader", () => {
  it("passes an output whose header holds exactly the tensors, metadata and bytes written, and returns its size", async () => {
    const { path, head } = await written("ok.safetensors");
    expect(await withHandle(path, (handle) => checkWrittenHeader({ path, handle }, descriptors, { k: "v" }, head))).toBe((await readFile(path)).byteLength);
  });

  it("fails on wrong metadata, a missing tensor, or any other header byte", async () => {
    const { path, head } = await written("bad-head.safetensors");
    await withHandle(path, async (handle) => {
      await expect(checkWrittenHeader({ path, handle }, descriptors, { k: "other" }, head)).rejects.toMatchObject({ code: "CONVERT_VERIFY_FAILED", message: expect.stringMatching(/metadata k differs/) });
      await expect(checkWrittenHeader({ path, handle }, [...descriptors, { name: "c", dtype: "U8", shape: [1], byteLength: 1 }], { k: "v" }, head)).rejects.toThrow(/2 tensors instead of 3/);
      const other = head.slice();
      other[head.byteLength - 1] = other[head.byteLength - 1] === 0x20 ? 0x09 : 0x20;
      await expect(checkWrittenHeader({ path, handle }, descriptors, { k: "v" }, other)).rejects.toThrow(/header bytes differ/);
      await expect(checkWrittenHeader({ path, handle }, descriptors, { k: "v" }, head.subarray(0, head.byteLength - 8))).rejects.toThrow(/header bytes differ/);
    });
  });

  it("fails, typed, on a header that does not parse", async () => {
    const { path, head } = await written("garbled.safetensors");
    await withHandle(path, async (handle) => {
      await handle.write(Uint8Array.from([0x7b, 0x7b]), 0, 2, 8);
      await expect(checkWrittenHeader({ path, handle }, descriptors, { k: "v" }, head)).rejects.toMatchObject({ code: "CONVERT_VERIFY_FAILED", message: expect.stringMatching(/could not be read back/) });
    });
  });
});

describe.skipIf(!zlibCrc32)("tensor checks", () => {
  it("checkTensorDigest passes the recorded CRC-32 and fails on another", () => {
    const crc = zlibCrc32!(tensors[1]!.data);
    expect(() => checkTensorDigest("out.safetensors", "b", crc, crc)).not.toThrow();
    expect(() => checkTensorDigest("out.safetensors", "b", crc, crc ^ 1)).toThrow(expect.objectContaining({ code: "CONVERT_VERIFY_FAILED", message: expect.stringMatching(/tensor "b" has different bytes from the CRC-32 its checkpoint records/) }));
  });

  it("checkWrittenTensor reads the tensor back at its offset in small chunks: passes as written, fails on a flipped byte", async () => {
    const { path, offsetOfB } = await written("tensor.safetensors");
    const crc = zlibCrc32!(tensors[1]!.data);
    await withHandle(path, async (handle) => {
      const readWritten = async (into: Uint8Array, offset: number) => {
        await readFully(handle, into, 0, into.byteLength, offset, path);
        return into;
      };
      const tensor = { name: "b", offset: offsetOfB, byteLength: 3, crc };
      await checkWrittenTensor(path, readWritten, tensor, new Uint8Array(2));
      await handle.write(Uint8Array.from([0]), 0, 1, offsetOfB + 2);
      await expect(checkWrittenTensor(path, readWritten, tensor, new Uint8Array(2))).rejects.toMatchObject({ code: "CONVERT_VERIFY_FAILED", message: expect.stringMatching(/tensor "b" has different bytes/) });
    });
  });
});
