import { open, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../test/safetensors-test-helpers.js";
import { readFully, writeFully } from "./read-fully.js";

describe("readFully / writeFully", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  it("reads exactly the requested range into a SharedArrayBuffer view", async () => {
    const path = join(dir, "r.bin");
    await writeFile(path, Uint8Array.from({ length: 100 }, (_, i) => i));
    const handle = await open(path, "r");
    const target = new Uint8Array(new SharedArrayBuffer(12));
    await readFully(handle, target, 2, 10, 50, path);
    expect(Array.from(target)).toEqual([0, 0, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59]);
    await handle.close();
  });

  it("a file that ends early is IO_SHORT_READ, never silent zeros", async () => {
    const path = join(dir, "short.bin");
    await writeFile(path, new Uint8Array(10));
    const handle = await open(path, "r");
    await expect(readFully(handle, new Uint8Array(8), 0, 8, 6, path)).rejects.toMatchObject({ code: "IO_SHORT_READ", file: path, message: `${path}: file ended after 10 bytes, expected 14` });
    await handle.close();
  });

  it("writeFully writes all bytes at a position", async () => {
    const path = join(dir, "w.bin");
    const handle = await open(path, "w+");
    await writeFully(handle, new Uint8Array([9, 8, 7]), 4);
    const back = new Uint8Array(7);
    await readFully(handle, back, 0, 7, 0, path);
    expect(Array.from(back)).toEqual([0, 0, 0, 0, 9, 8, 7]);
    await handle.close();
  });
});
