import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

const CACHE_FIXTURES = join(import.meta.dirname, "..", "..", "..", "cache", "test", "fixtures");
const expected = JSON.parse(await readFile(join(CACHE_FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { sha256: string; autov2: string; autov3: string; crc32: string }> };

let dir: string;
let cacheFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cli-hash-"));
  cacheFile = join(dir, "cache.json");
  await copyFile(join(CACHE_FIXTURES, "tiny.safetensors"), join(dir, "tiny.safetensors"));
  await copyFile(join(CACHE_FIXTURES, "hello.txt"), join(dir, "hello.txt"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function run(args: string[]) {
  const io = memoryIo({ env: { STMERGE_CACHE: cacheFile }, cwd: dir });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("stmerge hash", () => {
  it("prints every hash per file and remembers them", async () => {
    const r = await run(["hash", "tiny.safetensors", "hello.txt"]);
    expect(r.code).toBe(0);
    const e = expected.committed["tiny.safetensors"]!;
    expect(r.out).toContain(`SHA256  ${e.sha256}`);
    expect(r.out).toContain(`AutoV2  ${e.autov2}`);
    expect(r.out).toContain(`AutoV3  ${e.autov3}`);
    expect(r.out).toContain(`CRC32   ${e.crc32}`);
    expect(r.out).toContain("AutoV1  -");
    expect(r.out).toContain("CRC32   85114A0D");
    expect(r.out).toMatch(/BLAKE3\s+d74981efa70a0c880b8d8c1985d075dbcbf679b99a5f9914e5aaf96b831a9e24/);
    const again = await run(["hash", "tiny.safetensors", "--json"]);
    const json = JSON.parse(again.out) as { files: { cached: boolean; hashes: Record<string, string> }[] };
    expect(json.files[0]!.cached).toBe(true);
    expect(json.files[0]!.hashes.sha256).toBe(e.sha256);
  });

  it("--algo picks hashes; --no-cache reads the file and leaves the cache alone", async () => {
    const r = await run(["hash", "hello.txt", "--algo", "sha256,crc32", "--no-cache", "--json"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ command: "hash", files: [{ path: join(dir, "hello.txt"), sizeBytes: 11, cached: false, hashes: { sha256: "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9", crc32: "85114A0D" } }] });
  });

  it("an unknown algorithm and a missing file are clear errors", async () => {
    const bad = await run(["hash", "hello.txt", "--algo", "md5"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('unknown hash algorithm "md5"');
    const missing = await run(["hash", "nope.safetensors", "--no-cache"]);
    expect(missing.code).toBe(1);
    expect(missing.err).toContain("nope.safetensors: no such file");
  });
});
