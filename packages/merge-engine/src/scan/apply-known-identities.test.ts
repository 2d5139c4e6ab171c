import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { applyKnownIdentities, type KnownModelIdentity } from "./apply-known-identities.js";
import { scanFolder } from "./scan-folder.js";

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** Keys that make an SDXL checkpoint (cross-attention width 2048, the second text encoder). */
const TINY_SDXL = [
  { name: "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", shape: [2, 2048] },
  { name: "conditioner.embedders.1.model.ln_final.weight", shape: [4] },
];

describe("applyKnownIdentities", () => {
  it("names an SDXL derivative the keys cannot tell, fills hashes scan did not compute, and leaves the rest alone", async () => {
    const dir = tempDir("stmerge-known-");
    dirs.push(dir);
    mkdirSync(join(dir, "models"));
    const sdxl = await writeTinyModel(join(dir, "models", "a_sdxl.safetensors"), { seed: 1, layout: TINY_SDXL });
    const pony = await writeTinyModel(join(dir, "models", "b_pony_sdxl.safetensors"), { seed: 2, layout: TINY_SDXL });
    const other = await writeTinyModel(join(dir, "models", "c_sdxl.safetensors"), { seed: 3, layout: TINY_SDXL });
    const result = await scanFolder(join(dir, "models"), { manifestPath: join(dir, "merge_manifest.json") });
    const before = JSON.stringify(result.manifest);
    const asked: string[] = [];
    const store: Record<string, KnownModelIdentity> = {
      [sdxl]: { sha256: "a".repeat(64), crc32: "0000abcd", architecture: "Illustrious" },
      // The file name already names Pony: the store's name is not asked for, only the hash.
      [pony]: { sha256: "b".repeat(64), architecture: "Illustrious" },
      // Not a derivative name: SDXL stays.
      [other]: { sha256: "c".repeat(64), architecture: "SDXL" },
    };
    const manifest = await applyKnownIdentities(result, async (p) => (asked.push(p), store[p]));
    expect(asked).toEqual([sdxl, pony, other]);
    const models = manifest.models as Record<string, unknown>[];
    expect(models[0]).toEqual({ path: "models/a_sdxl.safetensors", weight: 1 / 3, architecture: "Illustrious", index: 0, sha256: "a".repeat(64), crc32: "0000ABCD", precision_detected: "fp16" });
    // Field order is the Python tool's: sha256 and crc32 before precision_detected.
    expect(Object.keys(models[0]!)).toEqual(["path", "weight", "architecture", "index", "sha256", "crc32", "precision_detected"]);
    expect(models[1]).toMatchObject({ architecture: "Pony", sha256: "b".repeat(64) });
    expect(models[1]).not.toHaveProperty("crc32");
    expect(models[2]).toMatchObject({ architecture: "SDXL", sha256: "c".repeat(64) });
    expect(manifest.output).toEqual(result.manifest.output);
    expect(JSON.stringify(result.manifest)).toBe(before);
  });

  it("keeps hashes scan computed and asks nothing for a model that needs nothing", async () => {
    const dir = tempDir("stmerge-known-");
    dirs.push(dir);
    await writeTinyModel(join(dir, "sd1.safetensors"), { seed: 4 });
    const result = await scanFolder(dir, { manifestPath: join(dir, "m.json"), hashFile: async () => ({ sha256: "d".repeat(64) }) });
    const asked: string[] = [];
    const manifest = await applyKnownIdentities(result, async (p) => (asked.push(p), { sha256: "e".repeat(64) }));
    expect(asked).toEqual([]);
    expect(manifest).toEqual(result.manifest);
  });
});
