import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, sep } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { loadManifest, parseManifest, portableManifestPath } from "./load-manifest.js";

const fixture = (name: string) => fileURLToPath(new URL(`../../test/fixtures/manifests/${name}`, import.meta.url));

describe("manifests written by the Python tool 0.6", () => {
  it("loads a scan manifest unchanged", async () => {
    const m = await loadManifest(fixture("python-0.6-scan.json"));
    expect(m.models.map((x) => [x.index, x.weight, x.architecture, x.precisionDetected])).toEqual([
      [0, 0.3333333333333333, "Pony", "fp16"],
      [1, 0.3333333333333333, "Pony", "fp16"],
      [2, 0.3333333333333333, "Pony", "fp32"],
    ]);
    expect(m.models[1]!.resolvedPath).toBe("/models/ponySemi Real.safetensors");
    expect(m.vae).toBeUndefined();
    expect(m.output.resolvedPath).toBe(join(m.dir, "Pony_ponyfurr_ponySemi_ponyreal_merged.safetensors"));
    expect(m.raw).toMatchObject({ output_precision: "match", device: "cpu", prune: true, overwrite: false, merge_method: "weighted_sum", consensus_exponent: 4 });
    expect(m.warnings).toEqual([]);
  });

  it("loads a manifest updated by a merge, sorting models by index", async () => {
    const m = await loadManifest(fixture("python-0.6-merged.json"));
    expect(m.models.map((x) => x.path)).toEqual(["models/a_model.safetensors", "models/b_model.safetensors"]);
    expect(m.models[0]!.resolvedPath).toBe(join(m.dir, "models/a_model.safetensors"));
    expect(m.vae).toMatchObject({ path: "models/sdxl_vae.safetensors", sha256: "c".repeat(64) });
    expect(m.raw).toMatchObject({ merge_method: "consensus", consensus_exponent: 6, device: "cuda", output_precision: "bf16" });
  });

  it("loads the legacy string forms of vae and output, and fills missing indices by position", async () => {
    const m = await loadManifest(fixture("python-0.6-legacy-strings.json"));
    expect(m.models.map((x) => x.index)).toEqual([0, 1]);
    expect(m.vae).toMatchObject({ path: "vae-ft-mse.safetensors", sha256: "e".repeat(64) });
    expect(m.output.path).toBe("out.safetensors");
    expect(m.raw.output_sha256).toBeNull();
  });

  it("never rewrites the manifest file", async () => {
    const file = fixture("python-0.6-scan.json");
    const before = readFileSync(file);
    await loadManifest(file);
    expect(readFileSync(file)).toEqual(before);
  });
});

describe("manifest paths", () => {
  it("resolves relative paths against the manifest folder, not the current folder", () => {
    const m = parseManifest(JSON.stringify({ models: [{ path: "a.safetensors", weight: 1 }] }), "/data/set/m.json", { cwd: "/elsewhere" });
    expect(m.models[0]!.resolvedPath).toBe("/data/set/a.safetensors");
  });

  it("accepts the Python tool's cwd-relative paths when only they exist", () => {
    const cwd = mkdtempSync(join(tmpdir(), "stmerge-manifest-"));
    mkdirSync(join(cwd, "my_models"));
    writeFileSync(join(cwd, "my_models", "x.safetensors"), "");
    const m = parseManifest(JSON.stringify({ models: [{ path: "my_models/x.safetensors", weight: 1 }] }), join(cwd, "my_models", "merge_manifest.json"), { cwd });
    expect(m.models[0]!.resolvedPath).toBe(join(cwd, "my_models", "x.safetensors"));
    expect(m.warnings[0]).toMatch(/relative to the current folder/);
  });
});

describe("manifests written on Windows", () => {
  it.skipIf(sep !== "/")("read backslash paths as folders, for models, the VAE, the output and the current-folder fallback", () => {
    const cwd = mkdtempSync(join(tmpdir(), "stmerge-manifest-win-"));
    try {
      mkdirSync(join(cwd, "set", "models"), { recursive: true });
      mkdirSync(join(cwd, "set", "out"));
      mkdirSync(join(cwd, "my_models"));
      for (const f of [join(cwd, "set", "models", "a.safetensors"), join(cwd, "set", "models", "vae.safetensors"), join(cwd, "my_models", "b.safetensors")]) writeFileSync(f, "");
      // The text as Python's json.dump writes Windows paths: each backslash escaped.
      const text = '{"models": [{"path": "models\\\\a.safetensors", "weight": 0.5, "architecture": "SD1.5", "index": 0}, {"path": "my_models\\\\b.safetensors", "weight": 0.5, "architecture": "SD1.5", "index": 1}], "vae": {"path": "models\\\\vae.safetensors"}, "output": {"path": "out\\\\merged.safetensors"}}';
      const m = parseManifest(text, join(cwd, "set", "merge_manifest.json"), { cwd });
      expect(m.models[0]!.path).toBe("models\\a.safetensors");
      expect(m.models.map((x) => x.resolvedPath)).toEqual([join(cwd, "set", "models", "a.safetensors"), join(cwd, "my_models", "b.safetensors")]);
      expect(m.vae?.resolvedPath).toBe(join(cwd, "set", "models", "vae.safetensors"));
      expect(m.output.resolvedPath).toBe(join(cwd, "set", "out", "merged.safetensors"));
      expect(m.warnings).toEqual([expect.stringContaining("my_models/b.safetensors: not found next to the manifest")]);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  it.skipIf(sep !== "/")("keeps a name that exists with a backslash in it", () => {
    const dir = mkdtempSync(join(tmpdir(), "stmerge-manifest-bs-"));
    try {
      writeFileSync(join(dir, "odd\\name.safetensors"), "");
      expect(portableManifestPath("odd\\name.safetensors", dir)).toBe("odd\\name.safetensors");
      expect(portableManifestPath("sub\\x.safetensors", dir)).toBe("sub/x.safetensors");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("excluded models", () => {
  it("stay out of the merge; the models merged are renumbered in index order, in the parsed manifest too", () => {
    const m = parseManifest(JSON.stringify({ models: [{ path: "c.safetensors", weight: 0.2, index: 2 }, { path: "a.safetensors", weight: 0.5, index: 0 }, { path: "b.safetensors", weight: 0.3, index: 1, excluded: true }] }), "/m/manifest.json");
    expect(m.models.map((x) => [x.path, x.index, x.weight])).toEqual([["a.safetensors", 0, 0.5], ["c.safetensors", 1, 0.2]]);
    expect(m.raw.models).toEqual([{ path: "a.safetensors", weight: 0.5, index: 0 }, { path: "c.safetensors", weight: 0.2, index: 1 }]);
  });

  it("count for the index check (a gap is still refused) and keep list order without indices", () => {
    expect(() => parseManifest(JSON.stringify({ models: [{ path: "a", weight: 1, index: 0 }, { path: "b", weight: 1, index: 2, excluded: true }] }), "/m/x.json")).toThrow(expect.objectContaining({ code: "MANIFEST_INDEX_GAP" }));
    const m = parseManifest(JSON.stringify({ models: [{ path: "a", weight: 1, excluded: true }, { path: "b", weight: 1 }, { path: "c", weight: 1, excluded: false }] }), "/m/x.json");
    expect(m.raw.models).toEqual([{ path: "b", weight: 1 }, { path: "c", weight: 1 }]);
    expect(m.models.map((x) => [x.path, x.index])).toEqual([["b", 0], ["c", 1]]);
  });
});

describe("manifest errors", () => {
  const parse = (json: unknown) => () => parseManifest(JSON.stringify(json), "/m/manifest.json");
  it.each([
    ["MANIFEST_INVALID", { models: [] }, /models/],
    ["MANIFEST_INVALID", { models: [{ path: "a", weight: 1, usage_info: 1 }] }, /usage_info/],
    ["MANIFEST_INVALID", { models: [{ path: "a" }] }, /weight/],
    ["MANIFEST_INVALID", { models: [{ path: "a", weight: 1 }], output_precision: "fp8" }, /output_precision/],
    ["MANIFEST_DUPLICATE_INDEX", { models: [{ path: "a", weight: 1, index: 0 }, { path: "b", weight: 1, index: 0 }] }, /duplicate/],
    ["MANIFEST_INDEX_GAP", { models: [{ path: "a", weight: 1, index: 0 }, { path: "b", weight: 1, index: 2 }] }, /contiguous/],
  ])("%s for %j", (code, json, message) => {
    expect(parse(json)).toThrow(expect.objectContaining({ code, file: "/m/manifest.json", message: expect.stringMatching(message) }));
  });

  it("names an unknown field first, with the field it likely meant and the fields allowed there", () => {
    expect(parse({ models: [{ path: "a", wieght: 1 }] })).toThrow(
      expect.objectContaining({ message: expect.stringMatching(/^\/m\/manifest\.json: models\.0\.wieght: unknown field \(did you mean "weight"\?\) \(fields here: path, weight, architecture, index/) }),
    );
    expect(parse({ models: [{ path: "a", weight: 1 }], merge_methd: "ties" })).toThrow(expect.objectContaining({ message: expect.stringContaining('merge_methd: unknown field (did you mean "merge_method"?)') }));
    expect(parse({ models: [{ path: "a", weight: 1 }], output: { path: "o", sha265: "x" } })).toThrow(expect.objectContaining({ message: expect.stringContaining('output.sha265: unknown field (did you mean "sha256"?) (fields here: path, sha256, precision_written)') }));
    expect(parse({ models: [{ path: "a", weight: 1 }], vae: { path: "v", hash: "x" } })).toThrow(expect.objectContaining({ message: expect.stringContaining("vae.hash: unknown field (fields here: path, sha256, crc32, precision_detected)") }));
  });

  it("MANIFEST_INVALID when every model is excluded", () => {
    expect(parse({ models: [{ path: "a", weight: 1, excluded: true }] })).toThrow(expect.objectContaining({ code: "MANIFEST_INVALID", message: "/m/manifest.json: every model is excluded; at least one must be merged" }));
  });

  it("MANIFEST_NOT_JSON and MANIFEST_NOT_FOUND", async () => {
    expect(() => parseManifest("{", "/m/x.json")).toThrow(expect.objectContaining({ code: "MANIFEST_NOT_JSON" }));
    await expect(loadManifest("/nonexistent/manifest.json")).rejects.toMatchObject({ code: "MANIFEST_NOT_FOUND" });
  });
});
