import { copyFile, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openModelCache } from "@stmerge/cache";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CivitaiClient } from "@stmerge/civitai-client";
import { CIVITAI_NOT_FOUND_TTL_MS, cacheBannerLines, cachedArchitecture, enrichWithCivitai, lookupCachedIdentity, recordOutputInCache } from "./cli-cache.js";
import { memoryIo } from "./cli-io.js";

const CACHE_FIXTURES = join(import.meta.dirname, "..", "..", "cache", "test", "fixtures");
let dir: string;
let cacheFile: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cli-cache-helpers-"));
  cacheFile = join(dir, "cache.json");
  await copyFile(join(CACHE_FIXTURES, "tiny.safetensors"), join(dir, "source.safetensors"));
  await copyFile(join(CACHE_FIXTURES, "tiny-other-meta.safetensors"), join(dir, "converted.safetensors"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("cli-cache helpers", () => {
  it("banner says how many entries and whether a CivitAI key is set", async () => {
    const io = memoryIo({ env: { STMERGE_CACHE: cacheFile }, cwd: dir });
    expect(await cacheBannerLines(io)).toEqual(["cache 0 entries", "no CivitAI key (public look-ups only)"]);
    await writeFile(join(dir, ".env"), "CIVITAI_API_KEY=abc\n");
    expect((await cacheBannerLines(io))[1]).toBe("CivitAI key configured (.env)");
    await rm(join(dir, ".env"));
  });

  it("a cached identity is used only while the file is unchanged; scan prefers the CivitAI architecture", async () => {
    const io = memoryIo({ env: { STMERGE_CACHE: cacheFile }, cwd: dir });
    expect(await lookupCachedIdentity("source.safetensors", io)).toBeUndefined();
    const cache = openModelCache({ path: cacheFile });
    const [r] = await cache.identify([join(dir, "source.safetensors")]);
    await cache.annotate(r!.entry.sha256, { civitai: { model_id: 1, version_id: 2, base_model: "Illustrious", model_name: "Src", version_name: "v", nsfw: false, trained_words: [] } });
    expect((await lookupCachedIdentity("source.safetensors", io))?.sha256).toBe(r!.entry.sha256);
    expect(await cachedArchitecture("source.safetensors", io)).toBe("Illustrious");
    expect(await lookupCachedIdentity("source.safetensors", io, { cache: false })).toBeUndefined();
    const later = new Date(Date.now() + 20_000);
    await utimes(join(dir, "source.safetensors"), later, later);
    expect(await lookupCachedIdentity("source.safetensors", io)).toBeUndefined();
    await cache.identify([join(dir, "source.safetensors")]);
  });

  it("a converted output carries its source's CivitAI data", async () => {
    const io = memoryIo({ env: { STMERGE_CACHE: cacheFile }, cwd: dir });
    const entry = await recordOutputInCache("converted.safetensors", io, { source: "source.safetensors" });
    expect(entry?.civitai?.base_model).toBe("Illustrious");
    expect(entry?.source_sha256).toMatch(/^[0-9a-f]{64}$/);
    expect((await lookupCachedIdentity("converted.safetensors", io))?.sha256).toBe(entry?.sha256);
    expect(await recordOutputInCache("converted.safetensors", io, { cache: false })).toBeUndefined();
  });

  it("a CivitAI 'not found' is remembered, and asked again only after the TTL", async () => {
    const cache = openModelCache({ path: join(dir, "ttl.json") });
    const [r] = await cache.identify([join(dir, "converted.safetensors")]);
    const calls: string[] = [];
    const client = {
      getModelVersionsByHashes: async (h: readonly string[]) => {
        calls.push(`bulk:${h.length}`);
        return new Map();
      },
      getModelVersionByHash: async (h: string) => {
        calls.push(`v3:${h}`);
        return { found: false as const, reason: "Model not found" };
      },
    } as unknown as CivitaiClient;
    expect(await enrichWithCivitai(cache, client, [r!.entry])).toEqual({ looked: 1, found: 0, notFound: 1 });
    expect(calls).toEqual(["bulk:1", `v3:${r!.entry.autov3}`]);
    const stored = (await cache.find(r!.entry.sha256))[0]!;
    expect(stored.civitai).toMatchObject({ not_found: true });
    expect(await enrichWithCivitai(cache, client, [stored])).toEqual({ looked: 0, found: 0, notFound: 0 });
    expect(await enrichWithCivitai(cache, client, [stored], { now: Date.now() + CIVITAI_NOT_FOUND_TTL_MS + 1000 })).toMatchObject({ looked: 1 });
    expect(calls).toHaveLength(4);
  });
});
