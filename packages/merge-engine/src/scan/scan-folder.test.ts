import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSafetensors, type TensorSource } from "@stmerge/core-tensors";
import { describe, expect, it } from "vitest";
import { TINY_SD1, tempDir, writeTinyModel } from "../../test/tiny-models.js";
import { parseManifest } from "../manifest/load-manifest.js";
import { detectPrecision } from "./detect-precision.js";
import { proposeOutputName } from "./propose-output-name.js";
import { formatManifest, scanFolder } from "./scan-folder.js";

describe("proposeOutputName", () => {
  it("reproduces the Python tool's names", () => {
    expect(proposeOutputName("Pony", ["pony-furry.enhanced.safetensors", "ponySemi Real.safetensors", "pony_realistic_v2.safetensors"])).toBe("Pony_ponyfurr_ponySemi_ponyreal_merged.safetensors");
    expect(proposeOutputName("SDXL", [])).toBe("SDXL_merged.safetensors");
    expect(proposeOutputName("SD1.5", ["a", "b", "c", "d", "e", "f"])).toBe("SD1.5_a_b_c_d_e_merged.safetensors");
  });
});

describe("detectPrecision", () => {
  it("takes the float dtype holding most bytes", () => {
    expect(detectPrecision([{ dtype: "F32", byteLength: 10 }, { dtype: "F16", byteLength: 100 }, { dtype: "I64", byteLength: 1000 }])).toBe("fp16");
    expect(detectPrecision([{ dtype: "I64", byteLength: 8 }])).toBe("unknown");
  });
});

describe("scanFolder", () => {
  it("writes a Python-compatible manifest from headers only, paths relative to the manifest", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "models"));
    await writeTinyModel(join(dir, "models", "b_model.safetensors"), { seed: 2 });
    await writeTinyModel(join(dir, "models", "a_model.safetensors"), { seed: 1, dtype: "BF16" });
    writeFileSync(join(dir, "models", "notes.txt"), "x");
    const vaeLayout = TINY_SD1.filter((t) => t.name.startsWith("first_stage_model.")).map((t) => ({ ...t, name: t.name.replace("first_stage_model.", "") }));
    await writeTinyModel(join(dir, "vae.safetensors"), { seed: 3, layout: vaeLayout });
    const hashes: string[] = [];
    const r = await scanFolder(join(dir, "models"), {
      manifestPath: join(dir, "merge_manifest.json"),
      vae: join(dir, "vae.safetensors"),
      hashFile: async (p) => (hashes.push(p), { sha256: "f".repeat(64), crc32: "0000ABCD" }),
    });
    expect(r.manifest).toEqual({
      models: [
        { path: "models/a_model.safetensors", weight: 0.5, architecture: "SD1.5", index: 0, sha256: "f".repeat(64), crc32: "0000ABCD", precision_detected: "bf16" },
        { path: "models/b_model.safetensors", weight: 0.5, architecture: "SD1.5", index: 1, sha256: "f".repeat(64), crc32: "0000ABCD", precision_detected: "fp16" },
      ],
      vae: { path: "vae.safetensors", sha256: "f".repeat(64), crc32: "0000ABCD", precision_detected: "fp16" },
      output: { path: "SD1.5_amodel_bmodel_merged.safetensors" },
      output_precision: "match",
      device: "cpu",
      prune: true,
      overwrite: false,
      merge_method: "weighted_sum",
      consensus_exponent: 4,
    });
    expect(hashes).toHaveLength(3);
    expect(r.vae?.report.architecture).toBe("vae");
    // What scan writes, the manifest loader reads back to the same files.
    const loaded = parseManifest(formatManifest(r.manifest), join(dir, "merge_manifest.json"), { cwd: "/" });
    expect(loaded.models.map((m) => m.resolvedPath)).toEqual([join(dir, "models", "a_model.safetensors"), join(dir, "models", "b_model.safetensors")]);
    expect(formatManifest(r.manifest).endsWith("}\n")).toBe(true);
  });

  it("reads headers only: no tensor bytes are read", async () => {
    const dir = tempDir();
    await writeTinyModel(join(dir, "a.safetensors"), { seed: 1 });
    await writeTinyModel(join(dir, "b.safetensors"), { seed: 2 });
    let reads = 0;
    const openSource = async (p: string): Promise<TensorSource> => {
      const s = await openSafetensors(p);
      return { path: s.path, descriptors: s.descriptors, metadata: s.metadata, get: (n: string) => s.get(n), read: (...a: Parameters<TensorSource["read"]>) => (reads++, s.read(...a)), readRange: (...a: Parameters<TensorSource["readRange"]>) => (reads++, s.readRange(...a)), close: () => s.close() };
    };
    const r = await scanFolder(dir, { manifestPath: join(dir, "m.json"), openSource });
    expect(r.models).toHaveLength(2);
    expect(reads).toBe(0);
  });

  it("sets weights 1.0 with equalWeights off, recurses on request, skips broken files on request", async () => {
    const dir = tempDir();
    await writeTinyModel(join(dir, "a.safetensors"), { seed: 1 });
    mkdirSync(join(dir, "sub"));
    await writeTinyModel(join(dir, "sub", "c.safetensors"), { seed: 1 });
    writeFileSync(join(dir, "broken.safetensors"), "not a model");
    const manifestPath = join(dir, "m.json");
    await expect(scanFolder(dir, { manifestPath })).rejects.toMatchObject({ file: join(dir, "broken.safetensors") });
    const r = await scanFolder(dir, { manifestPath, skipErrors: true, equalWeights: false, recursive: true });
    expect((r.manifest.models as { path: string; weight: number }[]).map((m) => [m.path, m.weight])).toEqual([["a.safetensors", 1], ["sub/c.safetensors", 1]]);
    expect(r.skipped.map((s) => s.path)).toEqual([join(dir, "broken.safetensors")]);
  });

  it("warns about mixed architectures and fails with its own codes", async () => {
    const dir = tempDir();
    await writeTinyModel(join(dir, "a.safetensors"), { seed: 1 });
    await writeTinyModel(join(dir, "x.safetensors"), { seed: 1, layout: [{ name: "conditioner.embedders.1.model.ln_final.weight", shape: [4] }] });
    const r = await scanFolder(dir, { manifestPath: join(dir, "m.json") });
    expect(r.warnings.join()).toMatch(/x\.safetensors is SDXL.*refuse/);
    await expect(scanFolder(join(dir, "nope"), { manifestPath: "m.json" })).rejects.toMatchObject({ code: "SCAN_NOT_A_FOLDER" });
    const empty = tempDir();
    await expect(scanFolder(empty, { manifestPath: join(empty, "m.json") })).rejects.toMatchObject({ code: "SCAN_NO_MODELS" });
    writeFileSync(join(empty, "bad.safetensors"), "x");
    await expect(scanFolder(empty, { manifestPath: join(empty, "m.json"), skipErrors: true })).rejects.toMatchObject({ code: "SCAN_ALL_SKIPPED" });
  });
});
