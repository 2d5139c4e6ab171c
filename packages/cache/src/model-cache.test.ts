import { copyFile, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CacheWarning } from "./cache-store.js";
import { openModelCache } from "./model-cache.js";
import { collectModelFiles } from "./collect-model-files.js";

const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
const expected = JSON.parse(await readFile(join(FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { sha256: string; crc32: string; autov3: string | null }> };

let dir: string;
let models: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-model-cache-"));
  models = join(dir, "models");
  await mkdir(join(models, "sub"), { recursive: true });
  await copyFile(join(FIXTURES, "tiny.safetensors"), join(models, "tiny.safetensors"));
  await copyFile(join(FIXTURES, "tiny-other-meta.safetensors"), join(models, "sub", "other.safetensors"));
  await copyFile(join(FIXTURES, "pattern-5000.bin"), join(models, "notes.txt"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ModelCache", () => {
  it("identifies files once, then answers from the cache while size and mtime hold", async () => {
    const cache = openModelCache({ path: join(dir, "c1.json") });
    const files = await collectModelFiles([models], { recurse: true });
    expect(files.map((f) => f.slice(models.length))).toEqual(["/sub/other.safetensors", "/tiny.safetensors"]);
    const first = await cache.identify(files);
    expect(first.map((r) => r.fromCache)).toEqual([false, false]);
    const tiny = first[1]!.entry;
    expect(tiny).toMatchObject({ filename: "tiny.safetensors", sha256: expected.committed["tiny.safetensors"]!.sha256, crc32: expected.committed["tiny.safetensors"]!.crc32, precision: "fp32", path: files[1] });
    expect(tiny.autov3).toBe(expected.committed["tiny.safetensors"]!.autov3);
    const second = await cache.identify(files);
    expect(second.map((r) => r.fromCache)).toEqual([true, true]);
    expect((await cache.lookup(files[1]!)).status).toBe("fresh");

    // A touched file is stale and re-hashed.
    const later = new Date(Date.now() + 5000);
    await utimes(files[1]!, later, later);
    expect((await cache.lookup(files[1]!)).status).toBe("stale");
    const third = await cache.identify([files[1]!]);
    expect(third[0]!.fromCache).toBe(false);
    expect((await cache.lookup(files[1]!)).status).toBe("fresh");
    // --force re-hashes even a fresh file.
    expect((await cache.identify([files[1]!], { force: true }))[0]!.fromCache).toBe(false);
  });

  it("re-hashes when an algorithm the entry lacks is asked for", async () => {
    const cache = openModelCache({ path: join(dir, "c2.json") });
    const file = join(models, "tiny.safetensors");
    const [a] = await cache.identify([file], { algorithms: ["sha256"] });
    expect(a!.entry.blake3).toBeUndefined();
    const [b] = await cache.identify([file], { algorithms: ["sha256", "blake3"] });
    expect(b!.fromCache).toBe(false);
    expect(b!.entry.blake3).toMatch(/^[0-9a-f]{64}$/);
    const [c] = await cache.identify([file], { algorithms: ["blake3"] });
    expect(c!.fromCache).toBe(true);
  });

  it("finds, annotates, removes and clears", async () => {
    const cache = openModelCache({ path: join(dir, "c3.json") });
    const [r] = await cache.identify([join(models, "tiny.safetensors")]);
    const e = r!.entry;
    expect((await cache.find(e.sha256))[0]?.sha256).toBe(e.sha256);
    expect((await cache.find(e.autov2!.toLowerCase()))[0]?.sha256).toBe(e.sha256);
    expect((await cache.find(e.crc32!))[0]?.sha256).toBe(e.sha256);
    expect((await cache.find("tiny.safetensors"))[0]?.sha256).toBe(e.sha256);
    expect((await cache.find("TINY"))[0]?.sha256).toBe(e.sha256);
    expect((await cache.find(join(models, "tiny.safetensors")))[0]?.sha256).toBe(e.sha256);
    expect(await cache.find("nothing-like-this")).toEqual([]);
    // Any 6+ hex prefix of any hash; shorter ones are not read as hashes.
    for (const h of [e.sha256, e.autov2!, e.autov3!, e.blake3!, e.crc32!]) expect((await cache.find(h.slice(0, 6).toUpperCase())).map((x) => x.sha256)).toEqual([e.sha256]);
    expect(await cache.find(e.blake3!.slice(0, 5))).toEqual([]);
    const civitai = { model_id: 1, version_id: 2, base_model: "SDXL 1.0", model_name: "M", version_name: "v", nsfw: false, trained_words: [] };
    expect(await cache.annotate(e.sha256, { civitai, architecture: "SDXL" })).toBe(true);
    expect((await cache.find(e.sha256))[0]).toMatchObject({ civitai, architecture: "SDXL" });
    const info = await cache.info();
    expect(info).toMatchObject({ entries: 1, paths: 1, stale: 0, missing: 0, withCivitai: 1 });
    expect(info.sizeBytes).toBeGreaterThan(100);
    expect((await cache.remove("tiny.safetensors")).length).toBe(1);
    expect((await cache.info()).entries).toBe(0);
    await cache.identify([join(models, "tiny.safetensors")]);
    expect(await cache.clear()).toBe(1);
  });

  it("records an output with known hashes and carries fields from its source", async () => {
    const cache = openModelCache({ path: join(dir, "c4.json") });
    const out = join(dir, "converted.safetensors");
    await copyFile(join(FIXTURES, "tiny.safetensors"), out);
    const civitai = { model_id: 9, version_id: 10, base_model: "Pony", model_name: "Src", version_name: "v", nsfw: false, trained_words: ["x"] };
    const entry = await cache.record(out, { extra: { civitai, architecture: "Pony" } });
    expect(entry).toMatchObject({ sha256: expected.committed["tiny.safetensors"]!.sha256, civitai, architecture: "Pony" });
    expect((await cache.lookup(out)).status).toBe("fresh");
    const again = await cache.record(out, { hashes: { sha256: entry.sha256, crc32: entry.crc32 ?? null } });
    expect(again.civitai).toEqual(civitai);
  });

  it("verify reports ok, stale, missing and uncached files, and prune drops them", async () => {
    const folder = join(dir, "verify");
    await mkdir(folder, { recursive: true });
    for (const n of ["a", "b", "c"]) await writeFile(join(folder, `${n}.safetensors`), `content ${n}`);
    const cache = openModelCache({ path: join(dir, "c5.json") });
    await cache.identify(["a", "b", "c"].map((n) => join(folder, `${n}.safetensors`)));
    await writeFile(join(folder, "b.safetensors"), "changed content b");
    await rm(join(folder, "c.safetensors"));
    await writeFile(join(folder, "d.ckpt"), "new file");
    const report = await cache.verify({ folder });
    expect(report.ok).toEqual([join(folder, "a.safetensors")]);
    expect(report.stale).toEqual([join(folder, "b.safetensors")]);
    expect(report.missing).toEqual([join(folder, "c.safetensors")]);
    expect(report.uncached).toEqual([join(folder, "d.ckpt")]);
    expect(report.prunedPaths).toBe(0);
    const pruned = await cache.verify({ folder, prune: true });
    expect(pruned).toMatchObject({ prunedPaths: 2, prunedEntries: 2 });
    expect(await cache.verify({ folder })).toMatchObject({ stale: [], missing: [], ok: [join(folder, "a.safetensors")] });
    expect((await cache.info()).entries).toBe(1);
  });

  it("a v1 cache from the Python tool answers by file name, size and mtime", async () => {
    const file = join(models, "tiny.safetensors");
    const cacheFile = join(dir, "v1.json");
    const sha = expected.committed["tiny.safetensors"]!.sha256;
    const mtime = new Date("2024-05-06T07:08:09.250Z");
    await utimes(file, mtime, mtime);
    const v1 = { version: 1, models: { [sha]: { filename: "tiny.safetensors", sha256: sha, file_size: 250, last_modified: "2024-05-06T07:08:09.250000Z", precision: "fp32", architecture: "SD1.5", crc32: null, civitai: null, cached_at: "2024-05-06T07:08:09Z" } } };
    await writeFile(cacheFile, JSON.stringify(v1));
    const warnings: CacheWarning[] = [];
    const cache = openModelCache({ path: cacheFile, onWarning: (w) => warnings.push(w) });
    expect((await cache.lookup(file)).status).toBe("fresh");
    const [r] = await cache.identify([file], { algorithms: ["sha256"] });
    expect(r!.fromCache).toBe(true);
    expect(r!.entry.architecture).toBe("SD1.5");
    expect(warnings.map((w) => w.code)).toEqual(["CACHE_MIGRATED"]);
    // The migrated file now indexes the path.
    const doc = JSON.parse(await readFile(cacheFile, "utf8"));
    expect(doc.version).toBe(2);
    expect(doc.paths[file].sha256).toBe(sha);
  });

  it("an interrupted run keeps what it hashed before the failure", async () => {
    const cache = openModelCache({ path: join(dir, "c6.json") });
    const files = [join(models, "tiny.safetensors"), join(models, "sub", "other.safetensors"), join(models, "gone.safetensors")];
    await expect(cache.identify(files, { flushEvery: 1, flushIntervalMs: 0 })).rejects.toMatchObject({ code: "FILE_NOT_FOUND", file: files[2] });
    expect((await cache.info()).entries).toBe(2);
  });

  it("an unwritable cache (its folder under a file) still returns the hashes, reporting the write error once", async () => {
    await writeFile(join(dir, "a-file"), "x");
    const cache = openModelCache({ path: join(dir, "a-file", "sub", "cache.json") });
    const errors: Error[] = [];
    const files = [join(models, "tiny.safetensors"), join(models, "sub", "other.safetensors")];
    const results = await cache.identify(files, { algorithms: ["sha256", "crc32"], flushEvery: 1, flushIntervalMs: 0, onWriteError: (e) => errors.push(e) });
    expect(results.map((r) => r.entry.sha256)).toEqual([expected.committed["tiny.safetensors"]!.sha256, expected.committed["tiny-other-meta.safetensors"]!.sha256]);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatchObject({ code: "CACHE_UNWRITABLE", file: join(dir, "a-file", "sub", "cache.json") });
    await expect(cache.identify(files.slice(0, 1), { algorithms: ["sha256"] })).rejects.toMatchObject({ code: "CACHE_UNWRITABLE" });
  });

  it("the cache location follows --cache-file, then STMERGE_CACHE, then the default", () => {
    expect(openModelCache({ path: "/x/y.json" }).location).toBe("/x/y.json");
    expect(openModelCache({ env: { STMERGE_CACHE: "/env/c.json" } }).location).toBe("/env/c.json");
    expect(openModelCache({ env: {} }).location).toMatch(/\.model_merger\/model_cache\.json$/);
  });
});
