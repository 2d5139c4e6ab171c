import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleChild } from "../test/bundle-child.js";
import type { CacheEntry } from "./cache-schema.js";
import type { CacheWarning } from "./cache-store.js";
import { JsonCacheStore } from "./json-cache-store.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cache-store-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(name: string, extra: Partial<CacheEntry> = {}): CacheEntry {
  const sha256 = createHash("sha256").update(name).digest("hex");
  return { filename: name, sha256, file_size: 10, last_modified: "2024-01-01T00:00:00.000Z", precision: null, architecture: null, civitai: null, cached_at: "2024-01-02T00:00:00.000Z", ...extra };
}

describe("JsonCacheStore", () => {
  it("starts empty, stores, merges fields and indexes paths", async () => {
    const path = join(dir, "basic", "model_cache.json");
    const store = new JsonCacheStore(path);
    expect(await store.entries()).toEqual([]);
    const a = entry("a.safetensors", { architecture: "SDXL" });
    await store.put([{ entry: a, path: "/m/a.safetensors", pathRecord: { sha256: a.sha256, file_size: 10, mtime_ms: 5 } }]);
    // A later put without architecture keeps it; a new field is added.
    await store.put([{ entry: { ...a, architecture: undefined as unknown as null, crc32: "85114A0D" } }]);
    const got = await store.getByHash(a.sha256.toUpperCase());
    expect(got).toMatchObject({ filename: "a.safetensors", architecture: "SDXL", crc32: "85114A0D" });
    expect(await store.getPathRecord("/m/a.safetensors")).toEqual({ sha256: a.sha256, file_size: 10, mtime_ms: 5 });
    const onDisk = JSON.parse(await readFile(path, "utf8"));
    expect(onDisk.version).toBe(2);
    expect(Object.keys(onDisk.models)).toEqual([a.sha256]);
    expect(await store.patch(a.sha256, { architecture: "Pony" })).toBe(true);
    expect(await store.patch("0".repeat(64), { architecture: "Pony" })).toBe(false);
    expect((await store.getByHash(a.sha256))?.architecture).toBe("Pony");
    expect(await store.removeEntries([a.sha256])).toBe(1);
    expect(await store.pathRecords()).toEqual([]);
    // No temp or lock files are left behind.
    expect((await readdir(join(dir, "basic"))).sort()).toEqual(["model_cache.json"]);
  });

  it("moves a corrupt file aside with a warning and starts fresh", async () => {
    const path = join(dir, "corrupt", "model_cache.json");
    await rm(join(dir, "corrupt"), { recursive: true, force: true });
    await import("node:fs/promises").then((fs) => fs.mkdir(join(dir, "corrupt")));
    await writeFile(path, '{"version": 2, "models": {"x": ');
    const warnings: CacheWarning[] = [];
    const store = new JsonCacheStore(path, { onWarning: (w) => warnings.push(w) });
    expect(await store.entries()).toEqual([]);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.code).toBe("CACHE_CORRUPT_MOVED");
    expect(warnings[0]!.message).toContain("invalid JSON");
    const files = await readdir(join(dir, "corrupt"));
    const backup = files.find((f) => f.startsWith("model_cache.json.corrupt-"));
    expect(backup).toBeDefined();
    expect(await readFile(join(dir, "corrupt", backup!), "utf8")).toBe('{"version": 2, "models": {"x": ');
    await store.put([{ entry: entry("b") }]);
    expect(await store.entries()).toHaveLength(1);
  });

  it("treats a structurally wrong cache as corrupt too", async () => {
    const path = join(dir, "wrong.json");
    await writeFile(path, JSON.stringify({ version: 2, models: { k: { sha256: "nothex" } }, paths: {} }));
    const warnings: CacheWarning[] = [];
    const store = new JsonCacheStore(path, { onWarning: (w) => warnings.push(w) });
    await store.put([{ entry: entry("c") }]);
    expect(warnings[0]?.message).toContain("sha256 is not a SHA-256");
    expect((await store.entries()).map((e) => e.filename)).toEqual(["c"]);
  });

  it("refuses a newer schema version without touching it", async () => {
    const path = join(dir, "newer.json");
    const text = JSON.stringify({ version: 99, models: {} });
    await writeFile(path, text);
    const store = new JsonCacheStore(path);
    await expect(store.put([{ entry: entry("d") }])).rejects.toMatchObject({ code: "CACHE_VERSION_UNSUPPORTED", file: path });
    expect(await readFile(path, "utf8")).toBe(text);
  });

  it("migrates the Python tool's v1 cache on the next write", async () => {
    const path = join(dir, "v1.json");
    const sha = createHash("sha256").update("v1").digest("hex");
    const v1 = {
      version: 1,
      models: {
        [sha]: {
          filename: "old.safetensors",
          sha256: sha,
          file_size: 123,
          last_modified: "2024-03-04T05:06:07.123456Z",
          precision: "fp16",
          architecture: "SDXL",
          crc32: "0d4a1185",
          civitai: { model_id: 1, version_id: 2, base_model: "SDXL 1.0", model_name: "Old", version_name: "v1", nsfw: false, trained_words: ["tok"] },
          cached_at: "",
        },
      },
    };
    await writeFile(path, JSON.stringify(v1, null, 2));
    const warnings: CacheWarning[] = [];
    const store = new JsonCacheStore(path, { onWarning: (w) => warnings.push(w) });
    const e = await store.getByHash(sha);
    expect(e).toMatchObject({ filename: "old.safetensors", crc32: "85114A0D", autov2: sha.slice(0, 10).toUpperCase(), civitai: { version_id: 2, trained_words: ["tok"] } });
    expect(e?.cached_at).not.toBe("");
    await store.put([{ entry: entry("new") }]);
    expect(warnings.map((w) => w.code)).toContain("CACHE_MIGRATED");
    const onDisk = JSON.parse(await readFile(path, "utf8"));
    expect(onDisk.version).toBe(2);
    expect(onDisk.paths).toEqual({});
    expect(Object.keys(onDisk.models)).toHaveLength(2);
  });

  it("parses the file once while it is unchanged, and again after any replacement", async () => {
    const path = join(dir, "memo.json");
    const store = new JsonCacheStore(path);
    await store.put([{ entry: entry("m1") }]);
    const a = await store.read();
    expect(await store.read()).toBe(a);
    expect(await new JsonCacheStore(path).read()).toBe(a);
    await store.put([{ entry: entry("m2") }]);
    const b = await store.read();
    expect(b).not.toBe(a);
    expect(Object.keys(b.models)).toHaveLength(2);
    // Another process replacing the file (temp + rename gives a new inode) is seen at once.
    const other = { version: 2, models: {}, paths: {} };
    await writeFile(`${path}.tmp`, JSON.stringify(other));
    await import("node:fs/promises").then((fs) => fs.rename(`${path}.tmp`, path));
    expect(Object.keys((await store.read()).models)).toHaveLength(0);
  });

  it("concurrent writer processes lose nothing", async () => {
    const script = await bundleChild(join(import.meta.dirname, "..", "test", "concurrent-writer.ts"), "concurrent-writer");
    const path = join(dir, "concurrent", "model_cache.json");
    const workers = 4;
    const perWorker = 25;
    const runs = Array.from({ length: workers }, (_, w) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [script, path, `w${w}`, String(perWorker)], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", reject);
        child.on("exit", (code) => (code === 0 ? resolve(code) : reject(new Error(`writer ${w} exited ${code}: ${stderr}`))));
      }),
    );
    await Promise.all(runs);
    await rm(script, { force: true });
    const store = new JsonCacheStore(path);
    expect(await store.entries()).toHaveLength(workers * perWorker);
    expect(await store.pathRecords()).toHaveLength(workers * perWorker);
    for (let w = 0; w < workers; w++) {
      for (let i = 0; i < perWorker; i++) {
        const sha = createHash("sha256").update(`w${w}/${i}`).digest("hex");
        expect((await store.getPathRecord(`/models/w${w}/${i}.safetensors`))?.sha256).toBe(sha);
      }
    }
    expect((await readdir(join(dir, "concurrent"))).sort()).toEqual(["model_cache.json"]);
  });

  it("concurrent writer processes recording in batches (CacheRecorder) lose nothing", async () => {
    const script = await bundleChild(join(import.meta.dirname, "..", "test", "concurrent-writer.ts"), "concurrent-recorder");
    const folder = join(dir, "concurrent-batched");
    const path = join(folder, "model_cache.json");
    const workers = 4;
    const perWorker = 25;
    const runs = Array.from({ length: workers }, (_, w) =>
      new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [script, path, `w${w}`, String(perWorker), "recorder"], { stdio: ["ignore", "ignore", "pipe"] });
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", reject);
        child.on("exit", (code) => (code === 0 ? resolve(code) : reject(new Error(`writer ${w} exited ${code}: ${stderr}`))));
      }),
    );
    await Promise.all(runs);
    await rm(script, { force: true });
    const store = new JsonCacheStore(path);
    expect(await store.entries()).toHaveLength(workers * perWorker);
    for (let w = 0; w < workers; w++) {
      for (let i = 0; i < perWorker; i++) {
        const sha = createHash("sha256").update(`w${w}/${i}`).digest("hex");
        expect((await store.getPathRecord(join(folder, `files-w${w}`, `${i}.bin`)))?.sha256).toBe(sha);
        expect((await store.getByHash(sha))?.filename).toBe(`${i}.bin`);
      }
    }
    // No lock or temp file left behind.
    expect((await readdir(folder)).filter((f) => !f.startsWith("files-")).sort()).toEqual(["model_cache.json"]);
  });
});
