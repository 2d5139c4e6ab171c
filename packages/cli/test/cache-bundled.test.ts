import { spawn } from "node:child_process";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";

// Every `stmerge cache` subcommand and `stmerge hash`, run as a real process from the bundled CLI.
const CACHE_FIXTURES = join(import.meta.dirname, "..", "..", "cache", "test", "fixtures");

let bin: string;
let dir: string;
let models: string;
let cacheFile: string;

function stmerge(args: string[], input?: string): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: dir, STMERGE_CACHE: cacheFile };
    const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env, stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
    child.stdin.end(input ?? "");
  });
}

beforeAll(async () => {
  bin = await bundleStmerge();
  dir = await mkdtemp(join(tmpdir(), "stmerge-bundled-cache-"));
  models = join(dir, "models");
  cacheFile = join(dir, "model_cache.json");
  await mkdir(join(models, "sub"), { recursive: true });
  await copyFile(join(CACHE_FIXTURES, "tiny.safetensors"), join(models, "tiny.safetensors"));
  await copyFile(join(CACHE_FIXTURES, "tiny-other-meta.safetensors"), join(models, "sub", "other.safetensors"));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(bin, { force: true });
});

describe("bundled stmerge: cache and hash commands", () => {
  it("hash", async () => {
    const expected = JSON.parse(await readFile(join(CACHE_FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { sha256: string; crc32: string }> };
    const r = await stmerge(["hash", join(models, "tiny.safetensors"), "--json"]);
    expect(r.code).toBe(0);
    const [report] = (JSON.parse(r.out) as { files: { hashes: Record<string, string> }[] }).files;
    expect(report!.hashes.sha256).toBe(expected.committed["tiny.safetensors"]!.sha256);
    expect(report!.hashes.crc32).toBe(expected.committed["tiny.safetensors"]!.crc32);
  });

  it("cache add (folder, --recurse), then again from the cache", async () => {
    const first = await stmerge(["cache", "add", models, "--recurse"]);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/2 files: 1 hashed/);
    const second = await stmerge(["cache", "add", models, "--recurse", "--json"]);
    expect(JSON.parse(second.out)).toMatchObject({ hashed: 0, fromCache: 2 });
  });

  it("cache info and list", async () => {
    const info = await stmerge(["cache", "info", "--json"]);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.out)).toMatchObject({ location: cacheFile, entries: 2, stale: 0, missing: 0 });
    const list = await stmerge(["cache", "list"]);
    expect(list.out).toMatch(/other\.safetensors[\s\S]*tiny\.safetensors/);
  });

  it("cache show", async () => {
    const r = await stmerge(["cache", "show", "other.safetensors"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`path          ${join(models, "sub", "other.safetensors")}`);
  });

  it("cache verify and --prune", async () => {
    await writeFile(join(models, "sub", "other.safetensors"), "changed");
    const r = await stmerge(["cache", "verify", models]);
    expect(r.code).toBe(1);
    expect(r.out).toContain("1 ok, 1 changed, 0 missing, 0 not cached");
    const p = await stmerge(["cache", "verify", "--prune"]);
    expect(p.code).toBe(0);
    expect(p.out).toContain("pruned 1 path record and 1 entry");
  });

  it("cache remove", async () => {
    const r = await stmerge(["cache", "remove", "tiny.safetensors"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("removed tiny.safetensors");
  });

  it("cache clear asks (refuses without a terminal) and clears with --yes", async () => {
    await stmerge(["cache", "add", models, "--recurse"]);
    const refused = await stmerge(["cache", "clear"]);
    expect(refused.code).toBe(2);
    const r = await stmerge(["cache", "clear", "--yes"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/cleared 2 entries/);
  });
});
