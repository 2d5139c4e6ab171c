import { copyFile, mkdtemp, rm, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { enrichWithCivitai, openModelCache } from "@stmerge/cache";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CivitaiClient, ModelVersion } from "@stmerge/civitai-client";
import { cacheBannerLines, cachedModelIdentity, civitaiLookup, lookupCachedIdentity, recordOutputInCache } from "./cli-cache.js";
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
    expect(await cachedModelIdentity("source.safetensors", io)).toEqual({ sha256: r!.entry.sha256, crc32: r!.entry.crc32, architecture: "Illustrious" });
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

  it("the CivitAI look-up adapts the client's answers into the cache's terms", async () => {
    const cache = openModelCache({ path: join(dir, "adapter.json") });
    const [r] = await cache.identify([join(dir, "converted.safetensors")]);
    const version = { id: 7, modelId: 3, name: "v2", baseModel: "Illustrious", trainedWords: ["1girl"], model: { name: "Illu Mix", type: "Checkpoint", nsfw: false } } as unknown as ModelVersion;
    const calls: string[] = [];
    const client = {
      getModelVersionsByHashes: async (h: readonly string[]) => {
        calls.push(`bulk:${h.length}`);
        return new Map();
      },
      getModelVersionByHash: async (h: string) => {
        calls.push(`v3:${h}`);
        return { found: true as const, value: version };
      },
    } as unknown as CivitaiClient;
    expect(await enrichWithCivitai(cache, civitaiLookup(client), [r!.entry])).toEqual({ looked: 1, found: 1, notFound: 0 });
    expect(calls).toEqual(["bulk:1", `v3:${r!.entry.autov3}`]);
    expect((await cache.find(r!.entry.sha256))[0]).toMatchObject({ architecture: "Illustrious", civitai: { model_id: 3, version_id: 7, base_model: "Illustrious", model_name: "Illu Mix", version_name: "v2", trained_words: ["1girl"], type: "Checkpoint" } });
  });
});
