import { mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSafetensors, writeSafetensors } from "@stmerge/core-tensors";
import { checkWrittenOutput, digestOf } from "./check-written-output.js";

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
const digests = new Map(tensors.map((t) => [t.name, digestOf(t.data)]));

describe("checkWrittenOutput", () => {
  it("passes an output that holds exactly what was written", async () => {
    const path = join(dir, "ok.safetensors");
    await writeSafetensors(path, tensors, { k: "v" });
    expect(await checkWrittenOutput(path, descriptors, { k: "v" }, digests, undefined)).toBeGreaterThan(0);
  });

  it("fails on a flipped data byte, wrong metadata, or a missing tensor", async () => {
    const path = join(dir, "bad.safetensors");
    await writeSafetensors(path, tensors, { k: "v" });
    const source = await openSafetensors(path);
    const at = source.fileOffsetOf("b");
    await source.close();
    const handle = await open(path, "r+");
    await handle.write(Uint8Array.from([0]), 0, 1, at + 1);
    await handle.close();
    await expect(checkWrittenOutput(path, descriptors, { k: "v" }, digests, undefined)).rejects.toMatchObject({ code: "CONVERT_VERIFY_FAILED", message: expect.stringMatching(/tensor "b" has different bytes/) });
    const good = join(dir, "good.safetensors");
    await writeSafetensors(good, tensors, { k: "v" });
    await expect(checkWrittenOutput(good, descriptors, { k: "other" }, digests, undefined)).rejects.toThrow(/metadata k differs/);
    await expect(checkWrittenOutput(good, [...descriptors, { name: "c", dtype: "U8", shape: [1], byteLength: 1 }], { k: "v" }, digests, undefined)).rejects.toThrow(/2 tensors instead of 3/);
  });

  it("with the header bytes a header-first writer hashed, passes the file that holds them and fails on any other byte", async () => {
    const path = join(dir, "head.safetensors");
    await writeSafetensors(path, tensors, { k: "v" });
    const source = await openSafetensors(path);
    const dataStart = source.header.dataStart;
    await source.close();
    const head = new Uint8Array((await readFile(path)).subarray(0, dataStart));
    expect(await checkWrittenOutput(path, descriptors, { k: "v" }, digests, undefined, undefined, undefined, head)).toBeGreaterThan(0);
    const other = head.slice();
    other[dataStart - 1] = other[dataStart - 1] === 0x20 ? 0x09 : 0x20;
    await expect(checkWrittenOutput(path, descriptors, { k: "v" }, digests, undefined, undefined, undefined, other)).rejects.toMatchObject({ code: "CONVERT_VERIFY_FAILED", message: expect.stringMatching(/header bytes differ/) });
    await expect(checkWrittenOutput(path, descriptors, { k: "v" }, digests, undefined, undefined, undefined, head.subarray(0, dataStart - 8))).rejects.toThrow(/header bytes differ/);
  });

  it("lets a tap see every byte of the file in order while it reads it back (the output's hashes need no other read)", async () => {
    const path = join(dir, "tapped.safetensors");
    await writeSafetensors(path, tensors, { k: "v" });
    const chunks: Uint8Array[] = [];
    let size = 0;
    let next = 0;
    const tap = {
      start: (file: { size: number }) => void (size = file.size),
      bytes: (chunk: Uint8Array, offset: number) => {
        expect(offset).toBe(next);
        next += chunk.byteLength;
        chunks.push(chunk.slice());
      },
    };
    await checkWrittenOutput(path, descriptors, { k: "v" }, digests, undefined, undefined, tap);
    const onDisk = await readFile(path);
    expect(size).toBe(onDisk.byteLength);
    expect(Buffer.concat(chunks).equals(onDisk)).toBe(true);
  });
});
