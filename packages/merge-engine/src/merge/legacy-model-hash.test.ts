import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "@stmerge/test-utils";
import { legacyModelHash } from "./legacy-model-hash.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const pattern = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i * 31 + 7) & 0xff);

describe("legacyModelHash (A1111 model_hash)", () => {
  // Expected values from A1111's modules/sd_models.py model_hash run in Python on the same bytes:
  // f.seek(0x100000); hashlib.sha256(f.read(0x10000)).hexdigest()[0:8]
  it.each([
    ["a file longer than 1 MiB + 64 KiB", 0x110000 + 1000, "ef463692"],
    ["a file ending inside the window", 0x100000 + 100, "c22e490d"],
    ["a file shorter than 1 MiB (empty window)", 4096, "e3b0c442"],
  ])("%s", async (_name, size, expected) => {
    const path = join(dir, `f${size}.bin`);
    writeFileSync(path, pattern(size));
    expect(await legacyModelHash(path)).toBe(expected);
  });
});
