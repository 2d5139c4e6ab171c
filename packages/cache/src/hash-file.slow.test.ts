import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeSparseFile } from "../test/pattern.js";
import { hashFile } from "./hash-file.js";

// In the "slow" project (root vitest.config.ts): 4.3 GB through SHA-256 takes ~3 s on an idle
// 2-core machine and ~50 s on a loaded one. Expected values: test/fixtures/hashes.json (Python hashlib/zlib).
const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
const expected = JSON.parse(await readFile(join(FIXTURES, "hashes.json"), "utf8")) as {
  generated: Record<string, { size: number; sha256: string; autov1: string | null; autov2: string; crc32: string; markers?: [number, string][] }>;
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-hash-sparse-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("hashFile above 4 GiB (sparse file)", () => {
  it("offsets past 2^32 are read and hashed correctly", async () => {
    const e = expected.generated["sparse-4g"]!;
    const path = join(dir, "sparse.bin");
    await writeSparseFile(path, e.size, e.markers!);
    const result = await hashFile(path, { algorithms: ["sha256", "autov1", "autov2", "crc32"] });
    expect(result.size).toBeGreaterThan(2 ** 32);
    expect(result.hashes).toEqual({ sha256: e.sha256, autov1: e.autov1, autov2: e.autov2, crc32: e.crc32 });
  }, 180_000);
});
