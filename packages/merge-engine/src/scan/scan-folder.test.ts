import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { openSafetensors, type TensorSource } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { TINY_SD1, tempDir, writeTinyModel } from "@stmerge/test-utils";
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
    await expect(scanFolder(join(dir, "nope"), { manifestPath: "m.json" })).rejects.toMatchObject({ code: "SCAN_NO_SUCH_FOLDER", message: `${join(dir, "nope")}: no such folder` });
    await expect(scanFolder(join(dir, "x.safetensors"), { manifestPath: "m.json" })).rejects.toMatchObject({ code: "SCAN_NOT_A_FOLDER" });
    const empty = tempDir();
    await expect(scanFolder(empty, { manifestPath: join(empty, "m.json") })).rejects.toMatchObject({ code: "SCAN_NO_MODELS" });
    writeFileSync(join(empty, "bad.safetensors"), "x");
    await expect(scanFolder(empty, { manifestPath: join(empty, "m.json"), skipErrors: true })).rejects.toMatchObject({ code: "SCAN_ALL_SKIPPED" });
  });
});

describe("scanFolder leaves out what a user did not mean to merge", () => {
  const dirs: string[] = [];
  const fresh = () => {
    const d = tempDir("stmerge-scan-");
    dirs.push(d);
    return d;
  };
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
  const merged = { merge_tool: "stmerge", sd_merge_recipe: JSON.stringify({ type: "stmerge" }) };

  it("leaves out earlier stmerge merge outputs unless includeMerged, and names the output from the models included", async () => {
    const dir = fresh();
    await writeTinyModel(join(dir, "AAA_earlier_merged.safetensors"), { seed: 1, metadata: merged });
    await writeTinyModel(join(dir, "bob.safetensors"), { seed: 2 });
    await writeTinyModel(join(dir, "carl.safetensors"), { seed: 3, metadata: { merge_tool: "someone-else", sd_merge_recipe: "{}" } });
    const r = await scanFolder(dir, { manifestPath: join(dir, "m.json") });
    expect(r.models.map((m) => basename(m.path))).toEqual(["bob.safetensors", "carl.safetensors"]);
    expect(r.mergeOutputs).toEqual([join(dir, "AAA_earlier_merged.safetensors")]);
    expect(r.warnings).toContain("left out 1 earlier merge output (AAA_earlier_merged.safetensors); --include-merged scans them");
    expect((r.manifest.output as { path: string }).path).toBe("SD1.5_bob_carl_merged.safetensors");
    const all = await scanFolder(dir, { manifestPath: join(dir, "m.json"), includeMerged: true });
    expect(all.models.map((m) => basename(m.path))).toEqual(["AAA_earlier_merged.safetensors", "bob.safetensors", "carl.safetensors"]);
    expect(all.mergeOutputs).toEqual([]);
  });

  it("a folder of merge outputs only says so", async () => {
    const dir = fresh();
    await writeTinyModel(join(dir, "m.safetensors"), { seed: 1, metadata: merged });
    await expect(scanFolder(dir, { manifestPath: join(dir, "m.json") })).rejects.toMatchObject({ code: "SCAN_ONLY_MERGE_OUTPUTS", message: expect.stringContaining("--include-merged") });
  });

  it("hints to convert the .ckpt files it does not read, also when they are all there is", async () => {
    const dir = fresh();
    await writeTinyModel(join(dir, "a.safetensors"), { seed: 1 });
    writeFileSync(join(dir, "old.ckpt"), "PK");
    const r = await scanFolder(dir, { manifestPath: join(dir, "m.json") });
    expect(r.legacyCheckpoints).toEqual([join(dir, "old.ckpt")]);
    expect(r.warnings).toContain(`1 legacy checkpoint not scanned (old.ckpt); convert it first: stmerge convert ${join(dir, "old.ckpt")}`);
    const only = fresh();
    writeFileSync(join(only, "x.ckpt"), "PK");
    writeFileSync(join(only, "y.CKPT"), "PK");
    await expect(scanFolder(only, { manifestPath: join(only, "m.json") })).rejects.toMatchObject({ code: "SCAN_NO_MODELS", message: expect.stringContaining("no .safetensors files found; 2 legacy checkpoints not scanned (x.ckpt, y.CKPT); convert them first") });
  });

  it("with skipErrors, names the output from the files that were read", async () => {
    const dir = fresh();
    writeFileSync(join(dir, "aaa_broken.safetensors"), "not a model");
    await writeTinyModel(join(dir, "zed.safetensors"), { seed: 1 });
    const r = await scanFolder(dir, { manifestPath: join(dir, "m.json"), skipErrors: true });
    expect((r.manifest.output as { path: string }).path).toBe("SD1.5_zed_merged.safetensors");
  });
});
