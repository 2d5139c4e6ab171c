import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";
import { useTorchFixtureDir } from "../../test/torch-fixture-dir.js";

// cache show/remove by any unique 6+ hex prefix, with clear words when a prefix is too short or
// names several files; and one entry per file after convert --overwrite.
let dir: string;
let cacheFile: string;

const entry = (sha256: string, filename: string, path: string) => ({
  filename,
  sha256,
  file_size: 10,
  last_modified: "2026-01-01T00:00:00.000Z",
  precision: "fp16",
  architecture: "SD1.5",
  civitai: null,
  cached_at: "2026-01-01T00:00:00.000Z",
  autov2: sha256.slice(0, 10).toUpperCase(),
  blake3: `${sha256.slice(32)}${sha256.slice(0, 32)}`,
  path,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cli-cache-queries-"));
  cacheFile = join(dir, "cache.json");
  // Two files of one name in two folders whose SHA-256 share the first 8 hex digits.
  const a = `ff9aee01${"1".repeat(56)}`;
  const b = `ff9aee01${"2".repeat(56)}`;
  const doc = {
    version: 2,
    models: { [a]: entry(a, "model.safetensors", "/m/a/model.safetensors"), [b]: entry(b, "model.safetensors", "/m/b/model.safetensors") },
    paths: { "/m/a/model.safetensors": { sha256: a, file_size: 10, mtime_ms: 1 }, "/m/b/model.safetensors": { sha256: b, file_size: 10, mtime_ms: 1 } },
  };
  await writeFile(cacheFile, JSON.stringify(doc));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(args: string[]) {
  const io = memoryIo({ env: { STMERGE_CACHE: cacheFile, STMERGE_NO_BANNER: "1" }, cwd: dir });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("cache show / remove by hash prefix", () => {
  it("a unique 6-hex prefix of SHA-256, AutoV2 or BLAKE3 finds the entry", async () => {
    for (const q of ["ff9aee011", "FF9AEE0111", "111111"]) {
      const r = await run(["cache", "show", q]);
      expect(r.code, q).toBe(0);
      expect(r.out).toContain("/m/a/model.safetensors");
      expect(r.out).not.toContain("/m/b/model.safetensors");
    }
  });

  it("an ambiguous prefix lists the paths, not the same name twice; exit 2, nothing removed", async () => {
    const r = await run(["cache", "remove", "FF9AEE"]);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('stmerge: "FF9AEE" is the start of 2 hashes: /m/a/model.safetensors (ff9aee011111), /m/b/model.safetensors (ff9aee012222); give more digits');
    expect(Object.keys(JSON.parse(await readFile(cacheFile, "utf8")).models)).toHaveLength(2);
  });

  it("a prefix under 6 hex digits says so", async () => {
    const r = await run(["cache", "show", "ff9a"]);
    expect(r.code).toBe(2);
    expect(r.err.trim()).toBe('stmerge: "ff9a": a hash prefix needs at least 6 hex digits');
  });

  it("a file name shared by two entries is refused by remove with both paths", async () => {
    const r = await run(["cache", "remove", "model.safetensors"]);
    expect(r.code).toBe(2);
    expect(r.err).toContain("matches 2 entries: /m/a/model.safetensors (ff9aee011111), /m/b/model.safetensors (ff9aee012222); give a hash prefix, or --all");
  });
});

describe("convert --overwrite replaces the cache entry of the file it replaced", () => {
  const fixtures = useTorchFixtureDir("stmerge-convert-overwrite-");
  it("one row for the output after converting two different checkpoints onto it", async () => {
    const cache = join(dir, "convert-cache.json");
    const env = { STMERGE_CACHE: cache, STMERGE_NO_BANNER: "1" };
    const rowsNamed = async (name: string) => Object.values(JSON.parse(await readFile(cache, "utf8")).models as Record<string, { filename: string }>).filter((e) => e.filename === name);
    fixtures.stage("vae.pt", "src.pt");
    expect(await runCli(["convert", "src.pt"], memoryIo({ env, cwd: fixtures.dir() }))).toBe(0);
    const first = await rowsNamed("src.safetensors");
    expect(first).toHaveLength(1);
    fixtures.stage("sd_lightning_legacy.ckpt", "src.pt");
    const io = memoryIo({ env, cwd: fixtures.dir() });
    expect(await runCli(["convert", "src.pt", "--overwrite"], io)).toBe(0);
    const second = await rowsNamed("src.safetensors");
    expect(second).toHaveLength(1);
    expect(second[0]).not.toEqual(first[0]);
  });
});

describe("--recursive everywhere, --recurse still accepted", () => {
  it("cache add and scan take both spellings; help shows only --recursive", async () => {
    const help = await run(["cache", "add", "--help"]);
    expect(help.out).toContain("--recursive");
    expect(help.out).not.toMatch(/--recurse\b/);
    const scanHelp = await run(["scan", "--help"]);
    expect(scanHelp.out).toContain("--recursive");
    expect(scanHelp.out).not.toMatch(/--recurse\b/);
    // A model file only in a subfolder.
    await mkdir(join(dir, "sub"), { recursive: true });
    await writeFile(join(dir, "sub", "x.safetensors"), "not parsed: hashing reads bytes");
    for (const flag of ["--recursive", "--recurse"]) {
      const io = memoryIo({ env: { STMERGE_CACHE: join(dir, `rec${flag}.json`), STMERGE_NO_BANNER: "1" }, cwd: dir });
      expect(await runCli(["cache", "add", ".", flag, "--no-civitai", "--json"], io), flag).toBe(0);
      expect(JSON.parse(io.out()).files.length, flag).toBeGreaterThan(0);
    }
    const none = memoryIo({ env: { STMERGE_CACHE: join(dir, "flat.json"), STMERGE_NO_BANNER: "1" }, cwd: dir });
    expect(await runCli(["cache", "add", "."], none)).toBe(1);
    expect(none.err()).toContain("(use --recursive for subfolders)");
  });
});
