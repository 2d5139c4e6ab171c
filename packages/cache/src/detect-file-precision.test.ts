import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectFilePrecision } from "./detect-file-precision.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-precision-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("detectFilePrecision", () => {
  it("names the float dtype holding most bytes", async () => {
    const path = join(dir, "mixed.safetensors");
    await writeSafetensors(path, [
      { name: "big", dtype: "BF16", shape: [64], data: new Uint8Array(128) },
      { name: "small", dtype: "F32", shape: [4], data: new Uint8Array(16) },
      { name: "ids", dtype: "I64", shape: [100], data: new Uint8Array(800) },
    ]);
    expect(await detectFilePrecision(path)).toBe("bf16");
  });
  it("is null for other formats, broken headers and files without floats", async () => {
    await writeFile(join(dir, "m.ckpt"), "PK");
    expect(await detectFilePrecision(join(dir, "m.ckpt"))).toBeNull();
    await writeFile(join(dir, "bad.safetensors"), "not safetensors at all");
    expect(await detectFilePrecision(join(dir, "bad.safetensors"))).toBeNull();
    const ints = join(dir, "ints.safetensors");
    await writeSafetensors(ints, [{ name: "ids", dtype: "I32", shape: [2], data: new Uint8Array(8) }]);
    expect(await detectFilePrecision(ints)).toBeNull();
  });
});
