import { copyFile, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openModelCache } from "./model-cache.js";

// An interrupted `identify` (Ctrl+C during `stmerge cache add`) keeps the files finished before
// the abort: they are in the cache file, which stays a valid document; the rest are not.
const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
const expected = JSON.parse(await readFile(join(FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { sha256: string }> };

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cache-abort-"));
  await copyFile(join(FIXTURES, "tiny.safetensors"), join(dir, "a.safetensors"));
  await copyFile(join(FIXTURES, "tiny-other-meta.safetensors"), join(dir, "b.safetensors"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe("ModelCache.identify with an AbortSignal", () => {
  it("aborted after the first file: rejects with HASH_ABORTED naming the second, the first is saved", async () => {
    const path = join(dir, "cache.json");
    const cache = openModelCache({ path });
    const controller = new AbortController();
    const files = [join(dir, "a.safetensors"), join(dir, "b.safetensors")];
    // Large batches and a long interval: without the abort path nothing would be written yet.
    const run = cache.identify(files, { signal: controller.signal, flushEvery: 100, flushIntervalMs: 60_000, onFile: (_r, i) => i === 0 && controller.abort() });
    await expect(run).rejects.toMatchObject({ code: "HASH_ABORTED", file: files[1] });
    const doc = JSON.parse(await readFile(path, "utf8")) as { models: Record<string, unknown>; paths: Record<string, { sha256: string }> };
    expect(Object.keys(doc.paths)).toEqual([files[0]]);
    expect(doc.paths[files[0]!]!.sha256).toBe(expected.committed["tiny.safetensors"]!.sha256);
    expect(Object.keys(doc.models)).toEqual([expected.committed["tiny.safetensors"]!.sha256]);
    expect((await cache.lookup(files[1]!)).status).not.toBe("fresh");
  });
});
