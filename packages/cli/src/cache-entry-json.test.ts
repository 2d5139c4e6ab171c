import { describe, expect, it } from "vitest";
import { cacheEntryJson } from "./cache-entry-json.js";

describe("cacheEntryJson", () => {
  it("camelCases every field, names the size sizeBytes and keeps extra fields", () => {
    const json = cacheEntryJson({
      filename: "a.safetensors",
      sha256: "ab".repeat(32),
      file_size: 12,
      last_modified: "2026-01-01T00:00:00.000Z",
      precision: "fp16",
      architecture: "SD1.5",
      civitai: { model_id: 1, version_id: 2, base_model: "SD 1.5", model_name: "m", version_name: "v", nsfw: false, trained_words: ["x"], not_found: false },
      cached_at: "2026-01-02T00:00:00.000Z",
      source_sha256: "cd".repeat(32),
    });
    expect(json).toEqual({
      filename: "a.safetensors",
      sha256: "ab".repeat(32),
      sizeBytes: 12,
      lastModified: "2026-01-01T00:00:00.000Z",
      precision: "fp16",
      architecture: "SD1.5",
      civitai: { modelId: 1, versionId: 2, baseModel: "SD 1.5", modelName: "m", versionName: "v", nsfw: false, trainedWords: ["x"], notFound: false },
      cachedAt: "2026-01-02T00:00:00.000Z",
      sourceSha256: "cd".repeat(32),
    });
  });
});
