import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

const CACHE_FIXTURES = join(import.meta.dirname, "..", "..", "..", "cache", "test", "fixtures");

const hashesJson = JSON.parse(await readFile(join(CACHE_FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { autov3: string }> };
// tiny.safetensors and tiny-other-meta.safetensors hold the same tensors: same AutoV3, other SHA-256.
const knownAutoV3 = hashesJson.committed["tiny.safetensors"]!.autov3;

let dir: string;
let models: string;
let cacheFile: string;

async function run(args: string[], env: Record<string, string> = {}) {
  const io = memoryIo({ env: { STMERGE_CACHE: cacheFile, ...env }, cwd: dir });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

function sha256(text: string | Uint8Array): string {
  return createHash("sha256").update(text).digest("hex");
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cli-cache-"));
  models = join(dir, "models");
  cacheFile = join(dir, "cache", "model_cache.json");
  await mkdir(join(models, "loras"), { recursive: true });
  await copyFile(join(CACHE_FIXTURES, "tiny.safetensors"), join(models, "tiny.safetensors"));
  await copyFile(join(CACHE_FIXTURES, "tiny-other-meta.safetensors"), join(models, "loras", "style.safetensors"));
  await writeFile(join(models, "old.ckpt"), "PK\u0003\u0004 pretend checkpoint");
  await writeFile(join(models, "readme.txt"), "not a model");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("stmerge cache (in-process)", () => {
  it("info on an empty cache", async () => {
    const r = await run(["cache", "info"]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`location      ${cacheFile}`);
    expect(r.out).toContain("entries       0");
    expect(r.out).toContain("no CivitAI key");
  });

  it("add hashes a folder, then reuses the cache; --recurse takes subfolders", async () => {
    const first = await run(["cache", "add", models]);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/2 files: 2 hashed .* 0 from cache/);
    expect(first.out).toMatch(/^╭─ ✔ cached ─+╮$/m);
    expect(first.out).toMatch(/^│ recorded +in .*\S +│$/m);
    expect(first.out).toMatch(/^│ next +stmerge cache list +│$/m);
    expect(first.err).toContain("no API key set, skipping look-ups");
    const second = await run(["cache", "add", "models", "--recurse", "--json"]);
    expect(second.code).toBe(0);
    const report = JSON.parse(second.out) as { hashed: number; fromCache: number; files: { path: string; fromCache: boolean }[] };
    expect(report).toMatchObject({ hashed: 1, fromCache: 2 });
    expect(report.files.map((f) => f.path)).toEqual([join(models, "loras", "style.safetensors"), join(models, "old.ckpt"), join(models, "tiny.safetensors")]);
  });

  it("list shows a table and JSON", async () => {
    const r = await run(["cache", "list"]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/file\s+AutoV2\s+size\s+precision\s+architecture\s+CivitAI/);
    expect(r.out).toContain("tiny.safetensors");
    expect(r.out).toContain("style.safetensors");
    const j = JSON.parse((await run(["cache", "list", "--json"])).out) as { filename: string; precision: string | null }[];
    expect(j.map((e) => e.filename)).toEqual(["old.ckpt", "style.safetensors", "tiny.safetensors"]);
    expect(j.find((e) => e.filename === "tiny.safetensors")?.precision).toBe("fp32");
  });

  it("show finds by file name and by any hash", async () => {
    const tiny = await readFile(join(models, "tiny.safetensors"));
    const sha = sha256(tiny);
    const byName = await run(["cache", "show", "tiny.safetensors"]);
    expect(byName.code).toBe(0);
    expect(byName.out).toContain(`SHA256        ${sha}`);
    expect(byName.out).toContain(`path          ${join(models, "tiny.safetensors")}`);
    const byAutoV2 = await run(["cache", "show", sha.slice(0, 10).toUpperCase(), "--json"]);
    expect((JSON.parse(byAutoV2.out) as { sha256: string; paths: string[] }[])[0]).toMatchObject({ sha256: sha, paths: [join(models, "tiny.safetensors")] });
    // A relative path is taken from the working folder.
    const byPath = await run(["cache", "show", "models/tiny.safetensors", "--json"]);
    expect((JSON.parse(byPath.out) as { sha256: string }[]).map((e) => e.sha256)).toEqual([sha]);
    const none = await run(["cache", "show", "nothing-here"]);
    expect(none.code).toBe(1);
    expect(none.err).toContain('no cache entry matches "nothing-here"');
  });

  it("verify finds changed, missing and uncached files; --prune drops them", async () => {
    const later = new Date(Date.now() + 10_000);
    await utimes(join(models, "tiny.safetensors"), later, later);
    await rm(join(models, "old.ckpt"));
    await writeFile(join(models, "new.pt"), "new");
    const r = await run(["cache", "verify", models]);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/changed\s+.*tiny\.safetensors/);
    expect(r.out).toMatch(/missing\s+.*old\.ckpt/);
    expect(r.out).toMatch(/not cached\s+.*new\.pt/);
    expect(r.out).toContain("1 ok, 1 changed, 1 missing, 1 not cached");
    expect((await run(["cache", "info"])).out).toMatch(/stale\s+1[\s\S]*missing\s+1/);
    const pruned = await run(["cache", "verify", models, "--prune", "--json"]);
    expect(pruned.code).toBe(0);
    expect(JSON.parse(pruned.out)).toMatchObject({ prunedPaths: 2, prunedEntries: 2 });
    expect((await run(["cache", "verify"])).code).toBe(0);
  });

  it("remove by name; an ambiguous query needs --all", async () => {
    await run(["cache", "add", models, "--recurse"]);
    const ambiguous = await run(["cache", "remove", "safetensors"]);
    expect(ambiguous.code).toBe(2);
    expect(ambiguous.err).toContain("matches 2 entries");
    const one = await run(["cache", "remove", "style.safetensors"]);
    expect(one.code).toBe(0);
    expect(one.out).toContain("removed style.safetensors");
    expect((await run(["cache", "show", "style.safetensors"])).code).toBe(1);
  });

  it("clear refuses without --yes when there is no terminal, and clears with it", async () => {
    const refused = await run(["cache", "clear"]);
    expect(refused.code).toBe(2);
    expect(refused.err).toContain("without --yes");
    const done = await run(["cache", "clear", "--yes"]);
    expect(done.code).toBe(0);
    expect(done.out).toMatch(/cleared \d+ entr/);
    expect((await run(["cache", "info", "--json"])).out).toContain('"entries": 0');
  });

  it("clear asks on a terminal: 'n' keeps the cache, 'y' clears it", async () => {
    await run(["cache", "add", models, "--recurse"]);
    const ask = async (answer: string) => {
      const stdin = Object.assign(Readable.from([answer]), { isTTY: true });
      const io = memoryIo({ env: { STMERGE_CACHE: cacheFile }, cwd: dir, stdin });
      const code = await runCli(["cache", "clear"], io);
      return { code, out: io.out(), err: io.err() };
    };
    const kept = await ask("n\n");
    expect(kept.code).toBe(0);
    expect(kept.err).toMatch(/Remove all \d+ entries from .*\? \[y\/N\]/);
    expect(kept.err).toContain("cache left as it was");
    expect((await run(["cache", "info", "--json"])).out).not.toContain('"entries": 0');
    const cleared = await ask("y\n");
    expect(cleared.code).toBe(0);
    expect(cleared.out).toMatch(/cleared \d+ entr/);
    expect((await run(["cache", "info", "--json"])).out).toContain('"entries": 0');
  });

  it("a corrupt cache file is moved aside with a warning", async () => {
    await writeFile(cacheFile, "{ not json");
    const r = await run(["cache", "info"]);
    expect(r.code).toBe(0);
    expect(r.err).toContain("warning:");
    expect(r.err).toContain("moved it to");
    const backups = (await readdir(join(dir, "cache"))).filter((f) => f.includes(".corrupt-"));
    expect(backups).toHaveLength(1);
  });

  it("--cache-file overrides STMERGE_CACHE", async () => {
    const other = join(dir, "other.json");
    const r = await run(["cache", "add", join(models, "tiny.safetensors"), "--cache-file", other]);
    expect(r.code).toBe(0);
    const doc = JSON.parse(await readFile(other, "utf8")) as { models: Record<string, unknown> };
    expect(Object.keys(doc.models)).toHaveLength(1);
  });
});

describe("stmerge cache add with CivitAI (local fake API)", () => {
  let server: Server;
  let baseUrl: string;
  const seen: { url: string; auth: string | undefined; body: string }[] = [];
  let knownSha = "";

  beforeAll(async () => {
    knownSha = sha256(await readFile(join(CACHE_FIXTURES, "tiny.safetensors"))).toUpperCase();
    const version = { id: 22, modelId: 11, name: "v2", baseModel: "Pony", trainedWords: ["score_9"], model: { name: "Tiny Pony", type: "Checkpoint", nsfw: false }, files: [{ name: "tiny.safetensors", hashes: { SHA256: knownSha, AutoV3: knownAutoV3 } }] };
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        seen.push({ url: req.url ?? "", auth: req.headers.authorization, body });
        res.setHeader("content-type", "application/json");
        if (req.method === "GET") {
          const hash = (req.url ?? "").split("/").pop();
          if (hash === knownAutoV3) res.end(JSON.stringify(version));
          else res.writeHead(404).end(JSON.stringify({ error: "Model not found" }));
          return;
        }
        const asked = JSON.parse(body || "[]") as string[];
        res.end(JSON.stringify(asked.includes(knownSha) ? [version] : []));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("looks files up in bulk (then by AutoV3) with the key in the header, stores CivitAI data and architecture", async () => {
    const file = join(dir, "civitai.json");
    const env = { CIVITAI_BASE_URL: baseUrl, CIVITAI_API_KEY: "sk-cli-test" };
    const r = await run(["cache", "add", models, "--recurse", "--cache-file", file], env);
    expect(r.code).toBe(0);
    expect(r.err).toContain("looking up with your API key");
    // tiny by SHA-256; style.safetensors (same tensors, other metadata) by AutoV3; new.pt not found.
    expect(r.out).toContain("CivitAI: 2 found, 1 not found of 3 looked up");
    expect(seen.map((s) => s.url)).toEqual(["/api/v1/model-versions/by-hash", `/api/v1/model-versions/by-hash/${knownAutoV3}`]);
    expect(seen.every((s) => s.auth === "Bearer sk-cli-test")).toBe(true);
    expect((await run(["cache", "show", "style.safetensors", "--cache-file", file], env)).out).toContain("Tiny Pony / v2");
    const show = await run(["cache", "show", "tiny.safetensors", "--cache-file", file], env);
    expect(show.out).toContain("Tiny Pony / v2 (model 11, version 22)");
    expect(show.out).toContain("architecture  Pony");
    expect(show.out).toContain("trained words score_9");
    // Known answers, found or not, are not asked again (a "not found" is retried after a week).
    await run(["cache", "add", models, "--recurse", "--cache-file", file], env);
    expect(seen).toHaveLength(2);
    // --no-civitai never calls.
    await run(["cache", "add", models, "--recurse", "--force", "--no-civitai", "--cache-file", file], env);
    expect(seen).toHaveLength(2);
    expect((await run(["cache", "info", "--cache-file", file], env)).out).toContain("CivitAI key configured (env)");
  });
});

describe("stmerge cache prints CivitAI answers as data", () => {
  let server: Server;
  let baseUrl: string;

  beforeAll(async () => {
    const knownSha = sha256(await readFile(join(CACHE_FIXTURES, "tiny.safetensors"))).toUpperCase();
    // A hostile server: names that try to clear the screen, retitle the terminal and forge a line.
    const version = { id: 5, modelId: 6, name: "v1\r\x1b[2K", baseModel: "SD 1.5\x1b]0;owned\x07", trainedWords: ["word\nCLEAN"], model: { name: "Evil\x1b[2J\u202eName", type: "Checkpoint", nsfw: false }, files: [{ name: "tiny.safetensors", hashes: { SHA256: knownSha } }] };
    server = createServer((req, res) => {
      let body = "";
      req.on("data", (d: Buffer) => (body += d.toString()));
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        if (req.method === "GET") res.writeHead(404).end(JSON.stringify({ error: "Model not found" }));
        else res.end(JSON.stringify((JSON.parse(body || "[]") as string[]).includes(knownSha) ? [version] : []));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });

  it("cache show and list escape every control character of model names, versions and trained words", async () => {
    const file = join(dir, "hostile-civitai.json");
    const env = { CIVITAI_BASE_URL: baseUrl, CIVITAI_API_KEY: "sk-cli-test" };
    expect((await run(["cache", "add", join(models, "tiny.safetensors"), "--cache-file", file], env)).code).toBe(0);
    const show = await run(["cache", "show", "tiny.safetensors", "--cache-file", file], env);
    const list = await run(["cache", "list", "--cache-file", file], env);
    for (const out of [show.out, list.out]) {
      // eslint-disable-next-line no-control-regex
      expect(out).not.toMatch(/[\r\x07\x1b\u202e]/);
      expect(out).toContain("Evil\\e[2J\\u202eName / v1\\r\\e[2K");
    }
    expect(show.out).toContain("trained words word\\nCLEAN");
    expect(show.out).toContain("base model    SD 1.5\\e]0;owned\\x07");
  });
});
