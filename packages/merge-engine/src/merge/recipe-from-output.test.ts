import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, openSafetensors, writeSafetensors, type KernelBackend } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../manifest/load-manifest.js";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { MAX_RECIPE_BYTES, manifestFromRecipe, readRecipeFromOutput } from "./recipe-from-output.js";
import { runMerge } from "./run-merge.js";

let kernels: KernelBackend;
let dir: string;
let files: string[];
let vaeFile: string;
const sha = (path: string) => createHash("sha256").update(readFileSync(path)).digest("hex");

beforeAll(async () => {
  kernels = createCpuKernelBackend({ workers: 0 });
  dir = tempDir("stmerge-recipe-");
  files = [];
  for (let i = 0; i < 3; i++) files.push(await writeTinyModel(join(dir, `model_${"abc"[i]}.safetensors`), { seed: i + 11 }));
  vaeFile = await writeTinyModel(join(dir, "vae.safetensors"), {
    seed: 99,
    layout: [
      { name: "decoder.conv_in.weight", shape: [4, 4, 3, 3] },
      { name: "decoder.mid.attn_1.q.weight", shape: [4, 4, 1, 1] },
    ],
  });
});
afterAll(async () => {
  await kernels.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every tensor of a safetensors file: name, dtype, shape and raw bytes. */
async function tensorsOf(path: string): Promise<Record<string, { dtype: string; shape: readonly number[]; bytes: string }>> {
  const s = await openSafetensors(path);
  try {
    const out: Record<string, { dtype: string; shape: readonly number[]; bytes: string }> = {};
    for (const d of s.descriptors) out[d.name] = { dtype: d.dtype, shape: d.shape, bytes: Buffer.from(await s.read(d.name)).toString("hex") };
    return out;
  } finally {
    await s.close();
  }
}

async function firstMerge(name: string, doc: Record<string, unknown>): Promise<string> {
  const text = JSON.stringify({ ...doc, output: { path: name } });
  writeFileSync(join(dir, `${name}.json`), text);
  const r = await runMerge(parseManifest(text, join(dir, `${name}.json`)), { kernels, timestamp: "2026-01-01T00:00:00.000Z" });
  return r.outputPath;
}

const hashedModels = (ws: number[]) => ws.map((w, i) => ({ path: `model_${"abc"[i]}.safetensors`, weight: w, sha256: sha(files[i]!) }));

describe("readRecipeFromOutput + manifestFromRecipe", () => {
  it("re-runs a TIES merge with block values, fp32 output and a VAE from copies elsewhere: tensors byte-identical", async () => {
    const out = await firstMerge("ties.safetensors", {
      models: hashedModels([0.5, 0.3, 0.2]),
      merge_method: "ties",
      merge_params: { density: 0.4 },
      block_params: { lambda: { IN00: 0.7, OUT03: 1.3 } },
      output_precision: "fp32",
      vae: { path: "vae.safetensors", sha256: sha(vaeFile) },
    });
    const recipe = await readRecipeFromOutput(out);
    expect(recipe.method).toBe("ties");
    expect(recipe.models.map((m) => m.sha256)).toEqual(files.map(sha));
    expect(recipe.models.map((m) => m.name)).toEqual(["model_a.safetensors", "model_b.safetensors", "model_c.safetensors"]);
    expect(recipe.models.map((m) => m.sizeBytes)).toEqual(files.map((f) => statSync(f).size));
    expect(recipe.vae).toMatchObject({ role: "vae", sha256: sha(vaeFile), name: "vae.safetensors", sizeBytes: statSync(vaeFile).size });

    // The inputs under other names in another folder: only the hashes tie them to the recipe.
    const elsewhere = join(dir, "elsewhere");
    mkdirSync(elsewhere);
    const moved = files.map((f, i) => join(elsewhere, `renamed-${i}.safetensors`));
    files.forEach((f, i) => copyFileSync(f, moved[i]!));
    copyFileSync(vaeFile, join(elsewhere, "v.safetensors"));
    const manifest = manifestFromRecipe(recipe, { models: moved, vae: join(elsewhere, "v.safetensors") });
    expect(manifest.models.map((m) => m.resolvedPath)).toEqual(moved);
    const again = await runMerge(manifest, { kernels, overrides: { output: join(dir, "ties-again.safetensors") } });
    expect(again.plan.outputPrecision).toBe("fp32");
    expect(again.plan.vaePath).toBe(join(elsewhere, "v.safetensors"));
    expect(await tensorsOf(again.outputPath)).toEqual(await tensorsOf(out));
    // The re-run records the same recipe hashes, so it can be reproduced in turn.
    expect((await readRecipeFromOutput(again.outputPath)).models.map((m) => m.sha256)).toEqual(files.map(sha));
  });

  it("re-runs weighted_sum with two-model alpha as a block list: byte-identical", async () => {
    const alpha = Array.from({ length: 26 }, (_, i) => i / 25);
    const out = await firstMerge("alpha.safetensors", { models: hashedModels([0.5, 0.5]).slice(0, 2), alpha });
    const recipe = await readRecipeFromOutput(out);
    const again = await runMerge(manifestFromRecipe(recipe, { models: files.slice(0, 2) }), { kernels, overrides: { output: join(dir, "alpha-again.safetensors") } });
    expect(await tensorsOf(again.outputPath)).toEqual(await tensorsOf(out));
  });

  it("refuses a file without a stmerge recipe, naming it", async () => {
    await expect(readRecipeFromOutput(files[0]!)).rejects.toMatchObject({ code: "RECIPE_MISSING", file: files[0], message: expect.stringContaining(`${files[0]}: no stmerge recipe`) });
    const a1111 = join(dir, "a1111.safetensors");
    await writeTinyModel(a1111, { seed: 5, metadata: { sd_merge_recipe: JSON.stringify({ type: "webui", primary_model_hash: "ab" }) } });
    await expect(readRecipeFromOutput(a1111)).rejects.toThrow(/written by another merger/);
  });

  async function withMetadata(name: string, metadata: Record<string, string>): Promise<string> {
    const path = join(dir, name);
    await writeSafetensors(path, [{ name: "x", dtype: "F32", shape: [1], data: new Uint8Array(4) }], metadata);
    return path;
  }
  const manifestOf = (extra: Record<string, unknown> = {}) => JSON.stringify({ models: [{ path: "a.safetensors", weight: 1, sha256: "a".repeat(64) }, { path: "b.safetensors", weight: 1, sha256: "b".repeat(64) }], ...extra });

  it("refuses a newer recipe format, an unknown manifest field, and oversized or too deep recipes", async () => {
    const newer = await withMetadata("newer.safetensors", { stmerge_manifest: manifestOf(), stmerge_recipe_version: "2", merge_tool_version: "9.0.0" });
    await expect(readRecipeFromOutput(newer)).rejects.toMatchObject({ code: "RECIPE_FORMAT_UNKNOWN", message: expect.stringMatching(/recipe format "2" \(written by stmerge 9\.0\.0\) is not one this stmerge reads/) });
    const field = await withMetadata("field.safetensors", { stmerge_manifest: manifestOf({ future_field: 1 }) });
    await expect(readRecipeFromOutput(field)).rejects.toMatchObject({ code: "RECIPE_FORMAT_UNKNOWN", file: field });
    const big = await withMetadata("big.safetensors", { stmerge_manifest: manifestOf({ merge_params: { pad: "x".repeat(MAX_RECIPE_BYTES) } }) });
    await expect(readRecipeFromOutput(big)).rejects.toMatchObject({ code: "RECIPE_TOO_LARGE" });
    const deep = await withMetadata("deep.safetensors", { stmerge_manifest: `{"models":[],"merge_params":{"a":${"[".repeat(100)}${"]".repeat(100)}}}` });
    await expect(readRecipeFromOutput(deep)).rejects.toMatchObject({ code: "RECIPE_FORMAT_UNKNOWN" });
  });

  it("never loads a plugin the recipe names: an unknown method is refused with the --plugin hint", async () => {
    const marker = join(dir, "plugin-ran");
    writeFileSync(join(dir, "evil.mjs"), `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "x"); export default [];`);
    const file = await withMetadata("plugin.safetensors", { stmerge_manifest: manifestOf({ merge_method: "median", plugins: ["./evil.mjs"] }) });
    await expect(readRecipeFromOutput(file)).rejects.toMatchObject({ code: "RECIPE_NEEDS_PLUGIN", message: expect.stringContaining("run again with --plugin ./evil.mjs") });
    const bare = await withMetadata("plugin-bare.safetensors", { stmerge_manifest: manifestOf({ merge_method: "median" }) });
    await expect(readRecipeFromOutput(bare)).rejects.toThrow(/--plugin <module>/);
    // With --plugin given, the method is left to the merge (which loads the user's plugins first); the recipe's are dropped.
    const recipe = await readRecipeFromOutput(file, { pluginsGiven: true });
    expect(recipe.pluginHints).toEqual(["./evil.mjs"]);
    expect(manifestFromRecipe(recipe, { models: [files[0]!, files[1]!] }).raw.plugins).toBeUndefined();
    expect(() => statSync(marker)).toThrow();
  });

  it("refuses an input recorded without a SHA-256, and ignores the recipe's output path", async () => {
    const file = await withMetadata("unhashed.safetensors", { stmerge_manifest: JSON.stringify({ models: [{ path: "a.safetensors", weight: 1, sha256: "a".repeat(64) }, { path: "dir/b.safetensors", weight: 1 }] }) });
    await expect(readRecipeFromOutput(file)).rejects.toMatchObject({ code: "RECIPE_INPUT_UNHASHED", message: expect.stringContaining('model 1 ("b.safetensors") was merged without a SHA-256') });
    const away = await withMetadata("away.safetensors", { stmerge_manifest: manifestOf({ output: { path: "/etc/evil.safetensors" } }) });
    const manifest = manifestFromRecipe(await readRecipeFromOutput(away), { models: [files[0]!, files[1]!] });
    expect(manifest.output.resolvedPath).not.toContain("/etc/");
    expect(manifest.raw.output).toBeUndefined();
  });
});
