import { copyFile, mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CacheDocument } from "./cache-schema.js";
import { JsonCacheStore } from "./json-cache-store.js";
import { ModelCache, openModelCache } from "./model-cache.js";

// A recorder's batched writes against the same records written one locked write at a time with
// ModelCache.record (the path every command used before): the documents must be equal.
const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
const expected = JSON.parse(await readFile(join(FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { sha256: string }> };
const SHA_A = expected.committed["tiny.safetensors"]!.sha256;
const SHA_B = expected.committed["tiny-other-meta.safetensors"]!.sha256;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cache-recorder-"));
  await copyFile(join(FIXTURES, "tiny.safetensors"), join(dir, "a.safetensors"));
  await copyFile(join(FIXTURES, "tiny-other-meta.safetensors"), join(dir, "b.safetensors"));
  await copyFile(join(FIXTURES, "tiny.safetensors"), join(dir, "out.safetensors"));
  await utimes(join(dir, "out.safetensors"), 1_700_000_000, 1_700_000_000);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The document with `cached_at` (the wall clock of each write) set aside. */
async function documentOf(path: string): Promise<CacheDocument> {
  const doc = JSON.parse(await readFile(path, "utf8")) as CacheDocument;
  for (const entry of Object.values(doc.models)) entry.cached_at = "-";
  return doc;
}

/** A cache that already knows out.safetensors as content A, and an unrelated entry with CivitAI data. */
async function seeded(name: string): Promise<ModelCache> {
  const cache = openModelCache({ path: join(dir, name) });
  await cache.record(join(dir, "out.safetensors"), { hashes: { sha256: SHA_A } });
  await cache.store.put([{ entry: { filename: "x.safetensors", sha256: "ab".repeat(32), file_size: 1, last_modified: new Date(0).toISOString(), precision: "fp16", architecture: "SDXL", civitai: null, cached_at: "-" } }]);
  return cache;
}

describe("CacheRecorder", () => {
  it("batched records give the document per-file records give, with one write", async () => {
    // out.safetensors is then written over with content B (another file's bytes, a new mtime).
    await copyFile(join(dir, "b.safetensors"), join(dir, "out.safetensors"));
    await utimes(join(dir, "out.safetensors"), 1_700_000_100, 1_700_000_100);
    const out = join(dir, "out.safetensors");

    const oneByOne = await seeded("one-by-one.json");
    await oneByOne.record(join(dir, "b.safetensors"), { hashes: { sha256: SHA_B }, extra: { architecture: "SD1" } });
    const replaced = (await oneByOne.lookup(out)).entry;
    await oneByOne.record(out, { hashes: { sha256: SHA_B }, extra: { source_sha256: SHA_A } });
    if (replaced && (await oneByOne.pathsOf(replaced.sha256)).length === 0) await oneByOne.store.removeEntries([replaced.sha256]);

    const batched = await seeded("batched.json");
    const recorder = await batched.recorder({ flushEvery: 100, flushIntervalMs: 60_000 });
    await recorder.record(join(dir, "b.safetensors"), { hashes: { sha256: SHA_B }, extra: { architecture: "SD1" } });
    const replacedInBatch = (await recorder.lookup(out)).entry;
    expect(replacedInBatch?.sha256).toBe(SHA_A);
    await recorder.record(out, { hashes: { sha256: SHA_B }, extra: { source_sha256: SHA_A }, replaces: replacedInBatch!.sha256 });
    // Nothing written yet: the file still holds the seeded document, the recorder sees its records.
    expect((await batched.lookup(join(dir, "b.safetensors"))).status).toBe("uncached");
    expect((await recorder.lookup(join(dir, "b.safetensors"))).status).toBe("fresh");
    expect(recorder.pending).toBe(2);
    await recorder.flush();
    expect({ pending: recorder.pending, writes: recorder.writes }).toEqual({ pending: 0, writes: 1 });

    expect(await documentOf(join(dir, "batched.json"))).toEqual(await documentOf(join(dir, "one-by-one.json")));
    // Content A was only at out.safetensors, so the entry the overwrite replaced went in the same write.
    expect(Object.keys((await documentOf(join(dir, "batched.json"))).models).sort()).toEqual(["ab".repeat(32), SHA_B].sort());
  });

  it("writes every flushEvery records, and after flushIntervalMs for the rest", async () => {
    const path = join(dir, "every.json");
    // The timed flush runs when this test fires it, not after real time passes.
    const timers: { run: () => Promise<void>; ms: number; cancelled: boolean }[] = [];
    const schedule = (run: () => Promise<void>, ms: number) => {
      const timer = { run, ms, cancelled: false };
      timers.push(timer);
      return () => void (timer.cancelled = true);
    };
    const recorder = await openModelCache({ path }).recorder({ flushEvery: 2, flushIntervalMs: 50, schedule });
    await recorder.record(join(dir, "a.safetensors"), { hashes: { sha256: SHA_A } });
    expect(recorder.writes).toBe(0);
    expect(timers.map((t) => t.ms)).toEqual([50]);
    await recorder.record(join(dir, "b.safetensors"), { hashes: { sha256: SHA_B } });
    expect(recorder.writes).toBe(1);
    // The count-triggered write cancelled the pending timer.
    expect(timers[0]!.cancelled).toBe(true);
    expect(Object.keys((await documentOf(path)).paths)).toHaveLength(2);
    await recorder.record(join(dir, "out.safetensors"), { hashes: { sha256: SHA_B } });
    expect(recorder.pending).toBe(1);
    expect(timers).toHaveLength(2);
    await timers[1]!.run();
    expect({ pending: recorder.pending, writes: recorder.writes }).toEqual({ pending: 0, writes: 2 });
    expect(Object.keys((await documentOf(path)).paths)).toHaveLength(3);
  });

  it("keeps what another process wrote between its writes", async () => {
    const path = join(dir, "shared.json");
    const recorder = await openModelCache({ path }).recorder({ flushEvery: 100 });
    await recorder.record(join(dir, "a.safetensors"), { hashes: { sha256: SHA_A } });
    await new JsonCacheStore(path).put([{ entry: { filename: "y.safetensors", sha256: "cd".repeat(32), file_size: 2, last_modified: new Date(0).toISOString(), precision: null, architecture: null, civitai: null, cached_at: "-" }, path: "/elsewhere/y.safetensors", pathRecord: { sha256: "cd".repeat(32), file_size: 2, mtime_ms: 0 } }]);
    await recorder.flush();
    const doc = await documentOf(path);
    expect(Object.keys(doc.paths).sort()).toEqual(["/elsewhere/y.safetensors", join(dir, "a.safetensors")].sort());
  });

  it("records a file under the size and mtime it had when hashed, so a file replaced since is not fresh", async () => {
    const path = join(dir, "replaced.safetensors");
    await copyFile(join(FIXTURES, "tiny.safetensors"), path);
    await utimes(path, 1_700_000_000, 1_700_000_000);
    const hashed = await stat(path);
    // Replaced after it was hashed (a re-download renamed over it) and before the record.
    await copyFile(join(FIXTURES, "tiny-other-meta.safetensors"), path);
    const recorder = await openModelCache({ path: join(dir, "replaced.json") }).recorder({ flushEvery: 100 });
    await recorder.record(path, { hashes: { sha256: SHA_A }, hashedAs: { size: hashed.size, mtimeMs: hashed.mtimeMs } });
    expect(recorder.pathRecord(path)).toEqual({ sha256: SHA_A, file_size: hashed.size, mtime_ms: hashed.mtimeMs });
    expect((await recorder.lookup(path)).status).toBe("stale");
    await recorder.flush();
  });

  it("a failing write is reported once with its record count, and no later write is tried", async () => {
    const blocked = join(dir, "plain-file");
    await writeFile(blocked, "");
    const failures: [string, number][] = [];
    const recorder = await openModelCache({ path: join(blocked, "cache.json") }).recorder({ flushEvery: 100, onWriteError: (e, n) => failures.push([(e as { code?: string }).code ?? "", n]) });
    await recorder.record(join(dir, "a.safetensors"), { hashes: { sha256: SHA_A } });
    await recorder.record(join(dir, "b.safetensors"), { hashes: { sha256: SHA_B } });
    await recorder.flush();
    await recorder.record(join(dir, "out.safetensors"), { hashes: { sha256: SHA_B } });
    await recorder.flush();
    expect(failures).toEqual([["CACHE_UNWRITABLE", 2]]);
  });
});
