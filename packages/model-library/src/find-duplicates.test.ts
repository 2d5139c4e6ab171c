import { mkdtempSync, readFileSync, rmSync, symlinkSync, linkSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { JsonCacheStore, ModelCache, openModelCache } from "@stmerge/cache";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildUiTree, CHECKPOINT_KEYS, safetensorsBytes, sha256, writeFile, type UiTree } from "../test/library-tree.js";
import { findDuplicates } from "./find-duplicates.js";
import { PARTIAL_BLOCK_BYTES } from "./partial-hash.js";
import { scanLibrary } from "./scan-library.js";

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "stmerge-library-dups-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Counts every file the duplicate search opens for its partial reads. */
function countingOpen() {
  const opened: string[] = [];
  return { opened, openForRead: (p: string) => (opened.push(p), open(p, "r")) };
}

let tree: UiTree;
beforeAll(() => {
  tree = buildUiTree(tempDir());
});

describe("findDuplicates", () => {
  it("finds the checkpoint held three times; links, hard links and same-size others are not duplicates", async () => {
    const scan = await scanLibrary([tree.a1111, tree.comfy, tree.plain]);
    const counter = countingOpen();
    const found = await findDuplicates(scan, { openForRead: counter.openForRead });
    expect(found.groups).toHaveLength(1);
    const [group] = found.groups;
    expect(group!.sha256).toBe(sha256(tree.sdxl));
    expect(group!.identities.map((i) => i.path.slice(tree.base.length + 1))).toEqual([
      "a1111/models/Stable-diffusion/sdxl_base.safetensors",
      "comfy/models/checkpoints/sdxl_base.safetensors",
      "plain/mixed/sdxl copy.safetensors",
    ]);
    expect(group!.wastedBytes).toBe(2 * tree.sdxl.length);
    expect(found.wastedBytes).toBe(2 * tree.sdxl.length);
    // Only the four files of that size were opened (the three copies and "other"), each once.
    expect(counter.opened).toHaveLength(4);
    expect(found.stats).toMatchObject({ sameSize: 4, partialHashed: 4, fullHashed: 3 });
  });

  it("reads no content at all when every size differs", async () => {
    const dir = tempDir();
    for (let i = 0; i < 20; i++) writeFile(join(dir, "models/checkpoints", `m${i}.safetensors`), safetensorsBytes(CHECKPOINT_KEYS, 1000 + i, i + 1));
    const scan = await scanLibrary([dir], { sniff: "none" });
    const counter = countingOpen();
    let identifyCalls = 0;
    const cache = openModelCache({ path: join(dir, "cache.json") });
    const spy = new Proxy(cache, { get: (t, k) => (k === "identify" ? (...a: Parameters<typeof cache.identify>) => (identifyCalls++, t.identify(...a)) : Reflect.get(t, k)) });
    const found = await findDuplicates(scan, { openForRead: counter.openForRead, cache: spy });
    expect(found.groups).toEqual([]);
    expect(counter.opened).toEqual([]);
    expect(identifyCalls).toBe(0);
    expect(found.stats).toMatchObject({ files: 20, sameSize: 0, partialHashed: 0, fullHashed: 0, bytesRead: 0 });
  });

  it("never samples the head: files differing only in their first block need the full hash, and are told apart", async () => {
    const dir = tempDir();
    const a = safetensorsBytes(CHECKPOINT_KEYS, 200 * 1024, 9);
    const b = Buffer.from(a);
    const at = b.length - 200 * 1024 + 10;
    b.writeUInt8(b.readUInt8(at) ^ 0xff, at); // first data byte: inside the first 16 KiB, which is not sampled
    const c = Buffer.from(a);
    c.writeUInt8(c.readUInt8(c.length - 1) ^ 0xff, c.length - 1); // last byte: in the tail block
    writeFile(join(dir, "a.safetensors"), a);
    writeFile(join(dir, "b.safetensors"), b);
    writeFile(join(dir, "c.safetensors"), c);
    expect(200 * 1024 + 100).toBeGreaterThan(4 * PARTIAL_BLOCK_BYTES);
    const found = await findDuplicates(await scanLibrary([dir], { sniff: "none" }));
    expect(found.groups).toEqual([]);
    // a and b share every sampled block, so only they went on to a full SHA-256; c left after sampling.
    expect(found.stats).toMatchObject({ partialHashed: 3, fullHashed: 2 });
  });

  it("takes full hashes from the metadata cache when the files are unchanged", async () => {
    const dir = tempDir();
    const big = safetensorsBytes(CHECKPOINT_KEYS, 300 * 1024, 11);
    writeFile(join(dir, "models/checkpoints/x.safetensors"), big);
    writeFile(join(dir, "models/Stable-diffusion/x.safetensors"), big);
    writeFile(join(dir, "models/Lora/zero.safetensors"), "");
    writeFile(join(dir, "models/loras/zero.safetensors"), "");
    const cache = openModelCache({ path: join(dir, "cache.json") });
    const scan = await scanLibrary([dir], { sniff: "none" });
    const cold = await findDuplicates(scan, { cache });
    expect(cold.groups.map((g) => g.sha256)).toEqual([sha256(big)]);
    expect(cold.stats).toMatchObject({ files: 2, fullHashed: 2, fromCache: 0 });
    const counter = countingOpen();
    const warm = await findDuplicates(scan, { cache, openForRead: counter.openForRead });
    expect(warm.groups.map((g) => g.sha256)).toEqual([sha256(big)]);
    expect(warm.stats).toMatchObject({ fullHashed: 0, fromCache: 2, partialHashed: 0, bytesRead: 0 });
    expect(counter.opened).toEqual([]);
  });

  it("records the full hashes it computes in one cache write, not one per file", async () => {
    const dir = tempDir();
    const big = safetensorsBytes(CHECKPOINT_KEYS, 64 * 1024, 12);
    const names = ["a", "b", "c", "d", "e"].map((n) => join(dir, `models/checkpoints/${n}.safetensors`));
    for (const n of names) writeFile(n, big);
    const store = new JsonCacheStore(join(dir, "cache.json"));
    let puts = 0;
    const put = store.put.bind(store);
    store.put = (items) => (puts++, put(items));
    const scan = await scanLibrary([dir], { sniff: "none" });
    const found = await findDuplicates(scan, { cache: new ModelCache(store) });
    expect(found.stats).toMatchObject({ fullHashed: 5, fromCache: 0 });
    expect(puts).toBe(1);
    const doc = await store.read();
    expect(names.map((n) => doc.paths[n]?.sha256)).toEqual(names.map(() => sha256(big)));
  });

  it("counts a file once however many hard links and symlinks show it", async () => {
    const dir = tempDir();
    const bytes = safetensorsBytes(CHECKPOINT_KEYS, 70 * 1024, 12);
    writeFile(join(dir, "models/checkpoints/m.safetensors"), bytes);
    linkSync(join(dir, "models/checkpoints/m.safetensors"), join(dir, "models/checkpoints/hard.safetensors"));
    writeFile(join(dir, "models/Stable-diffusion/.keep"), "");
    symlinkSync("../checkpoints/m.safetensors", join(dir, "models/Stable-diffusion/m.safetensors"));
    const found = await findDuplicates(await scanLibrary([dir], { sniff: "none" }));
    expect(found.groups).toEqual([]);
    expect(found.wastedBytes).toBe(0);
    expect(readFileSync(join(dir, "models/Stable-diffusion/m.safetensors"))).toEqual(bytes);
  });
});
