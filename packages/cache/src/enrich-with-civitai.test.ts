import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CIVITAI_NOT_FOUND_TTL_MS, enrichWithCivitai, type CivitaiLookup, type CivitaiMatch } from "./enrich-with-civitai.js";
import { openModelCache } from "./model-cache.js";

const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-enrich-"));
  await copyFile(join(FIXTURES, "tiny.safetensors"), join(dir, "a.safetensors"));
  await copyFile(join(FIXTURES, "tiny-other-meta.safetensors"), join(dir, "b.safetensors"));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

const PONY: CivitaiMatch = {
  info: { model_id: 1, version_id: 2, base_model: "Pony", model_name: "Pony Mix", version_name: "v1", nsfw: false, trained_words: ["score_9"], type: "Checkpoint" },
  architecture: "Pony",
};

/** A lookup that answers from tables and records what it was asked. */
function tableLookup(bySha: Record<string, CivitaiMatch>, byV3: Record<string, CivitaiMatch> = {}): CivitaiLookup & { calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    async bySha256(hashes) {
      calls.push(`bulk:${hashes.length}`);
      return new Map(hashes.filter((h) => bySha[h]).map((h) => [h, bySha[h]!]));
    },
    async byAutoV3(h) {
      calls.push(`v3:${h}`);
      return byV3[h];
    },
  };
}

describe("enrichWithCivitai", () => {
  it("stores a found version with its base model's architecture, in one write, and asks by AutoV3 only for safetensors files still unknown", async () => {
    const cache = openModelCache({ path: join(dir, "found.json") });
    const [a, b] = await cache.identify([join(dir, "a.safetensors"), join(dir, "b.safetensors")]);
    const lookup = tableLookup({ [a!.entry.sha256]: PONY }, { [b!.entry.autov3!]: { ...PONY, architecture: undefined } });
    const now = Date.parse("2026-01-02T03:04:05.000Z");
    // The same entry twice is looked up once.
    expect(await enrichWithCivitai(cache, lookup, [a!.entry, b!.entry, a!.entry], { now })).toEqual({ looked: 2, found: 2, notFound: 0 });
    expect(lookup.calls).toEqual(["bulk:2", `v3:${b!.entry.autov3}`]);
    const [storedA] = await cache.find(a!.entry.sha256);
    expect(storedA).toMatchObject({ architecture: "Pony", civitai: { ...PONY.info, fetched_at: "2026-01-02T03:04:05.000Z" } });
    expect(storedA!.civitai!.not_found).toBeUndefined();
    // No architecture implied: the entry keeps the one it had (none).
    expect((await cache.find(b!.entry.sha256))[0]!.architecture).toBeNull();
    // Entries with CivitAI data are not asked again unless forced.
    expect(await enrichWithCivitai(cache, lookup, [storedA!])).toEqual({ looked: 0, found: 0, notFound: 0 });
    expect(await enrichWithCivitai(cache, lookup, [storedA!], { force: true })).toEqual({ looked: 1, found: 1, notFound: 0 });
  });

  it("a stored architecture wins over the one CivitAI's base model implies", async () => {
    const cache = openModelCache({ path: join(dir, "keep.json") });
    const [a] = await cache.identify([join(dir, "a.safetensors")]);
    await enrichWithCivitai(cache, tableLookup({ [a!.entry.sha256]: PONY }), [{ ...a!.entry, architecture: "SDXL" }]);
    expect((await cache.find(a!.entry.sha256))[0]!.architecture).toBe("SDXL");
  });

  it("remembers a 'not found' and asks again only after the TTL", async () => {
    const cache = openModelCache({ path: join(dir, "ttl.json") });
    const [r] = await cache.identify([join(dir, "b.safetensors")]);
    const lookup = tableLookup({});
    const now = Date.parse("2026-03-01T00:00:00.000Z");
    expect(await enrichWithCivitai(cache, lookup, [r!.entry], { now })).toEqual({ looked: 1, found: 0, notFound: 1 });
    expect(lookup.calls).toEqual(["bulk:1", `v3:${r!.entry.autov3}`]);
    const stored = (await cache.find(r!.entry.sha256))[0]!;
    expect(stored.civitai).toMatchObject({ not_found: true, model_id: null, fetched_at: "2026-03-01T00:00:00.000Z" });
    expect(await enrichWithCivitai(cache, lookup, [stored], { now: now + CIVITAI_NOT_FOUND_TTL_MS })).toEqual({ looked: 0, found: 0, notFound: 0 });
    expect(await enrichWithCivitai(cache, lookup, [stored], { now: now + CIVITAI_NOT_FOUND_TTL_MS + 1 })).toMatchObject({ looked: 1 });
    expect(lookup.calls).toHaveLength(4);
  });
});
