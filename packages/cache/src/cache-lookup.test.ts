import { describe, expect, it } from "vitest";
import { lookupIn } from "./cache-lookup.js";
import { emptyCacheDocument, type CacheEntry } from "./cache-schema.js";

const sha = "a".repeat(64);
const entry: CacheEntry = { filename: "m.safetensors", sha256: sha, file_size: 100, last_modified: "2024-01-01T00:00:00.500Z", precision: null, architecture: null, civitai: null, cached_at: "x" };

describe("lookupIn", () => {
  const doc = emptyCacheDocument();
  doc.models[sha] = entry;
  doc.paths["/m/m.safetensors"] = { sha256: sha, file_size: 100, mtime_ms: 1234.5 };

  it("fresh while size and mtime match, stale otherwise", () => {
    expect(lookupIn(doc, "/m/m.safetensors", 100, 1234.5).status).toBe("fresh");
    expect(lookupIn(doc, "/m/m.safetensors", 101, 1234.5).status).toBe("stale");
    expect(lookupIn(doc, "/m/m.safetensors", 100, 9999).status).toBe("stale");
  });
  it("missing when the file is gone, uncached when unknown", () => {
    expect(lookupIn(doc, "/m/m.safetensors", undefined, undefined)).toMatchObject({ status: "missing", entry });
    expect(lookupIn(doc, "/m/other.safetensors", 5, 5).status).toBe("uncached");
  });
  it("an unindexed path matches a v1 entry by file name, size and mtime", () => {
    const legacy: CacheEntry = { ...entry, filename: "old.safetensors", sha256: "b".repeat(64) };
    const v1 = emptyCacheDocument();
    v1.models[legacy.sha256] = legacy;
    const mtime = Date.parse("2024-01-01T00:00:00.500Z");
    expect(lookupIn(v1, "/elsewhere/old.safetensors", 100, mtime)).toMatchObject({ status: "fresh", entry: legacy });
    expect(lookupIn(v1, "/elsewhere/old.safetensors", 100, mtime + 5).status).toBe("uncached");
  });
  it("an entry indexed under its own path never vouches for a same-named copy elsewhere", () => {
    const mtime = Date.parse("2024-01-01T00:00:00.500Z");
    expect(lookupIn(doc, "/elsewhere/m.safetensors", 100, mtime).status).toBe("uncached");
  });
});
