import { existsSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend, decodeToF32, encodeFromF32, openSafetensors, type KernelBackend } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseManifest } from "../manifest/load-manifest.js";
import { maxUlpF16, tempDir, writeTinyModel } from "@stmerge/test-utils";
import { runMerge } from "./run-merge.js";

let kernels: KernelBackend;
beforeAll(() => {
  kernels = createCpuKernelBackend({ workers: 0 });
});
afterAll(() => kernels.close());

async function readTensor(path: string, key: string): Promise<{ dtype: string; values: number[] }> {
  const s = await openSafetensors(path);
  try {
    const d = s.get(key)!;
    const bytes = await s.read(key);
    return { dtype: d.dtype, values: Array.from(decodeToF32(bytes, d.dtype)) };
  } finally {
    await s.close();
  }
}

async function setup(n = 3, opts: { drop?: Record<number, string[]>; extra?: Record<number, { name: string; shape: number[] }[]>; metadata?: Record<number, Record<string, string>> } = {}) {
  const dir = tempDir();
  const files: string[] = [];
  for (let i = 0; i < n; i++) {
    files.push(await writeTinyModel(join(dir, `model_${"abc"[i] ?? i}.safetensors`), { seed: i + 1, drop: opts.drop?.[i] ?? [], extra: opts.extra?.[i] ?? [], metadata: opts.metadata?.[i] ?? {} }));
  }
  return { dir, files };
}

function manifestIn(dir: string, json: Record<string, unknown>) {
  const text = JSON.stringify(json, null, 2);
  writeFileSync(join(dir, "m.json"), text);
  return parseManifest(text, join(dir, "m.json"));
}

const weights = [0.5, 0.3, 0.2];
const models = (ws: number[], extra: Record<string, unknown>[] = []) => ws.map((w, i) => ({ path: `model_${"abc"[i]}.safetensors`, weight: w, ...(extra[i] ?? {}) }));

/** Independent reference: decode F16 inputs, Σ wᵢxᵢ in F32 order, encode to F16. */
async function referenceWeighted(files: string[], key: string, ws: number[]): Promise<number[]> {
  const inputs = await Promise.all(files.map(async (f) => (await readTensor(f, key)).values));
  const acc = inputs[0]!.map((_, e) => {
    let s = 0;
    inputs.forEach((x, i) => (s = Math.fround(s + Math.fround(ws[i]! * x[e]!))));
    return s;
  });
  return Array.from(decodeToF32(encodeFromF32(Float32Array.from(acc), "F16"), "F16"));
}

describe("runMerge weighted_sum", () => {
  it("merges three models within F16 rounding of a reference, copying non-float and index keys", async () => {
    const { dir, files } = await setup();
    const m = manifestIn(dir, { models: models(weights), output: { path: "out.safetensors" } });
    const r = await runMerge(m, { kernels, timestamp: "2026-01-01T00:00:00.000Z" });
    expect(r.outputPath).toBe(join(dir, "out.safetensors"));
    for (const key of ["model.diffusion_model.input_blocks.0.0.weight", "model.diffusion_model.out.2.bias", "first_stage_model.decoder.conv_in.weight"]) {
      const out = await readTensor(r.outputPath, key);
      expect(out.dtype).toBe("F16");
      expect(maxUlpF16(out.values, await referenceWeighted(files, key, weights))).toBeLessThanOrEqual(1);
    }
    const pos = await readTensor(r.outputPath, "cond_stage_model.transformer.text_model.embeddings.position_ids");
    expect(pos).toEqual({ dtype: "I64", values: Array.from({ length: 77 }, (_, i) => i) });
    // 0-d F32 scalar merged like any tensor.
    const scalar = await readTensor(r.outputPath, "cond_stage_model.transformer.text_model.logit_scale");
    const scalarInputs = await Promise.all(files.map((f) => readTensor(f, "cond_stage_model.transformer.text_model.logit_scale")));
    expect(scalar.dtype).toBe("F32");
    expect(scalar.values[0]).toBeCloseTo(scalarInputs.reduce((sum, t, i) => sum + weights[i]! * t.values[0]!, 0), 6);
    // Pruned by default: EMA and schedule buffers.
    const s = await openSafetensors(r.outputPath);
    expect(s.get("model_ema.decay")).toBeUndefined();
    expect(s.get("alphas_cumprod")).toBeUndefined();
    expect(r.plan.pruned).toEqual(["alphas_cumprod", "model_ema.decay"]);
    await s.close();
  });

  it("applies per-block weights to the keys of that block only", async () => {
    const { dir, files } = await setup();
    const block = [{ block_weights: { IN00: 1, OUT11: 0 } }, { block_weights: { IN00: 0, OUT11: 1 } }, { block_weights: { IN00: 0, OUT11: 0 } }];
    const m = manifestIn(dir, { models: models(weights, block), output: "out.safetensors" });
    const r = await runMerge(m, { kernels });
    expect((await readTensor(r.outputPath, "model.diffusion_model.input_blocks.0.0.weight")).values).toEqual((await readTensor(files[0]!, "model.diffusion_model.input_blocks.0.0.weight")).values);
    expect((await readTensor(r.outputPath, "model.diffusion_model.out.2.bias")).values).toEqual((await readTensor(files[1]!, "model.diffusion_model.out.2.bias")).values);
    expect(maxUlpF16((await readTensor(r.outputPath, "model.diffusion_model.middle_block.1.proj_in.weight")).values, await referenceWeighted(files, "model.diffusion_model.middle_block.1.proj_in.weight", weights))).toBeLessThanOrEqual(1);
    expect(r.plan.blocks.find((b) => b.block === "IN00")?.weights).toEqual([1, 0, 0]);
    // time_embed goes to BASE by default, IN00 on request.
    expect(r.plan.entries.find((e) => e.key.includes("time_embed"))?.block).toBe("BASE");
  });

  it("normalizes weights on request and warns when they do not sum to 1", async () => {
    const { dir, files } = await setup();
    const m = manifestIn(dir, { models: models([5, 3, 2]), output: "out.safetensors" });
    const dry = await runMerge(m, { dryRun: true });
    expect(dry.warnings.join()).toMatch(/sum to 10\.0000/);
    const r = await runMerge(m, { kernels, overrides: { normalize: true } });
    expect(r.warnings.join()).not.toMatch(/sum to/);
    expect(r.plan.blocks[0]!.weights).toEqual([0.5, 0.3, 0.2]);
    expect(maxUlpF16((await readTensor(r.outputPath, "model.diffusion_model.out.2.bias")).values, await referenceWeighted(files, "model.diffusion_model.out.2.bias", weights))).toBeLessThanOrEqual(1);
  });

  it("follows the missing-key rule: rescale over present models; keys only in later models are left out", async () => {
    const key = "model.diffusion_model.middle_block.1.proj_in.weight";
    const { dir, files } = await setup(3, { drop: { 2: [key] }, extra: { 1: [{ name: "model.diffusion_model.extra.weight", shape: [2] }] } });
    const m = manifestIn(dir, { models: models(weights), output: "out.safetensors" });
    const r = await runMerge(m, { kernels });
    const entry = r.plan.entries.find((e) => e.key === key)!;
    expect(entry.inputs).toEqual([0, 1]);
    expect(entry.weights[0]).toBeCloseTo(0.625, 12);
    expect(entry.weights[1]).toBeCloseTo(0.375, 12);
    expect(maxUlpF16((await readTensor(r.outputPath, key)).values, await referenceWeighted(files.slice(0, 2), key, [0.625, 0.375]))).toBeLessThanOrEqual(1);
    expect(r.plan.onlyInLaterModels).toEqual(["model.diffusion_model.extra.weight"]);
    const s = await openSafetensors(r.outputPath);
    expect(s.get("model.diffusion_model.extra.weight")).toBeUndefined();
    await s.close();
  });

  it("writes the requested precision and keeps pruned keys with prune off", async () => {
    const { dir } = await setup(2);
    const m = manifestIn(dir, { models: models([0.5, 0.5]), output: "out.safetensors", output_precision: "fp32", prune: false });
    const r = await runMerge(m, { kernels });
    expect((await readTensor(r.outputPath, "model.diffusion_model.out.2.bias")).dtype).toBe("F32");
    expect((await readTensor(r.outputPath, "alphas_cumprod")).dtype).toBe("F32");
    expect((await readTensor(r.outputPath, "cond_stage_model.transformer.text_model.embeddings.position_ids")).dtype).toBe("I64");
    const bf = await runMerge(m, { kernels, overrides: { outputPrecision: "bf16", output: join(dir, "bf.safetensors") } });
    expect((await readTensor(bf.outputPath, "model.diffusion_model.out.2.bias")).dtype).toBe("BF16");
  });
});

describe("runMerge metadata", () => {
  it("records the A1111 recipe, models by SHA-256 with ancestry, and the manifest", async () => {
    const parentRecipe = { type: "webui", primary_model_hash: "1".repeat(64) };
    const grand = { ["1".repeat(64)]: { name: "grandparent", legacy_hash: "11111111", sd_merge_recipe: null } };
    const { dir } = await setup(2, { metadata: { 0: { sd_merge_recipe: JSON.stringify(parentRecipe), sd_merge_models: JSON.stringify(grand), "modelspec.architecture": "stable-diffusion-v1" } } });
    const m = manifestIn(dir, { models: models([0.6, 0.4]), output: "out.safetensors" });
    const hashes = new Map([[join(dir, "model_a.safetensors"), "a".repeat(64)], [join(dir, "model_b.safetensors"), "b".repeat(64)]]);
    const r = await runMerge(m, { kernels, hashes, timestamp: "2026-01-01T00:00:00.000Z", toolVersion: "9.9.9" });
    const s = await openSafetensors(r.outputPath);
    const md = s.metadata;
    await s.close();
    const recipe = JSON.parse(md.sd_merge_recipe!);
    expect(recipe).toMatchObject({ type: "stmerge", algorithm: "weighted_sum", models: [{ hash: "a".repeat(64), weight: 0.6, index: 0 }, { hash: "b".repeat(64), weight: 0.4, index: 1 }] });
    const ancestry = JSON.parse(md.sd_merge_models!);
    // legacy_hash is A1111's model_hash: these files are under 1 MiB, so the SHA-256 of an empty window.
    expect(ancestry["a".repeat(64)]).toMatchObject({ name: "model_a.safetensors", legacy_hash: "e3b0c442", architecture: "SD1.5", sd_merge_recipe: parentRecipe });
    // The fields A1111's merger writes, as its metadata reader (json.loads of values starting with "{") finds them.
    expect(recipe).toMatchObject({ primary_model_hash: "a".repeat(64), secondary_model_hash: "b".repeat(64), tertiary_model_hash: null, interp_method: "Weighted sum", multiplier: 0.4, save_as_half: false, custom_name: "out", config_source: 0, bake_in_vae: "None", discard_weights: "", is_inpainting: false, is_instruct_pix2pix: false });
    expect(md).toMatchObject({ "modelspec.title": "out", "modelspec.merged_from": "model_a, model_b" });
    expect(ancestry["1".repeat(64)]).toMatchObject({ name: "grandparent" });
    expect(JSON.parse(md.stmerge_manifest!)).toMatchObject({ merge_method: "weighted_sum", models: [{ path: "model_a.safetensors" }, { path: "model_b.safetensors" }] });
    expect(md).toMatchObject({ merge_tool: "stmerge", merge_tool_version: "9.9.9", merge_timestamp: "2026-01-01T00:00:00.000Z", "modelspec.architecture": "stable-diffusion-v1" });
  });
});

describe("runMerge other methods end to end", () => {
  it("dare is reproducible for a seed, independent of the chunk size", async () => {
    const dir = tempDir();
    const big = [{ name: "model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", shape: [2, 768] }, { name: "model.diffusion_model.input_blocks.4.0.w", shape: [300, 700] }];
    for (let i = 0; i < 3; i++) await writeTinyModel(join(dir, `model_${"abc"[i]}.safetensors`), { seed: i + 1, layout: big });
    const m = manifestIn(dir, { models: models([1, 1, 1]), merge_method: "dare", merge_params: { drop_rate: 0.4 }, seed: 11, output: "a.safetensors" });
    const a = await runMerge(m, { kernels, memoryBudgetBytes: 1 });
    expect(a.plan.chunkElements).toBe(65536);
    const b = await runMerge(m, { kernels, overrides: { output: join(dir, "b.safetensors") } });
    expect(b.plan.chunkElements).toBeGreaterThan(210000);
    const key = "model.diffusion_model.input_blocks.4.0.w";
    expect((await readTensor(a.outputPath, key)).values).toEqual((await readTensor(b.outputPath, key)).values);
    const c = await runMerge(m, { kernels, overrides: { output: join(dir, "c.safetensors"), seed: 12 } });
    expect((await readTensor(c.outputPath, key)).values).not.toEqual((await readTensor(a.outputPath, key)).values);
    // A seed given as a method parameter is the same seed.
    const viaParams = manifestIn(dir, { models: models([1, 1, 1]), merge_method: "dare", merge_params: { drop_rate: 0.4, seed: 11 }, output: "d.safetensors" });
    const d = await runMerge(viaParams, { kernels });
    expect(d.plan.seed).toBe(11);
    expect((await readTensor(d.outputPath, key)).values).toEqual((await readTensor(a.outputPath, key)).values);
  });

  it("add_difference copies keys that one of A/B/C lacks; consensus and slerp run", async () => {
    const key = "model.diffusion_model.out.2.bias";
    const { dir, files } = await setup(3, { drop: { 2: [key] } });
    const m = manifestIn(dir, { models: models([1, 1, 1]), merge_method: "add_difference", merge_params: { alpha: 0.5 }, block_params: { alpha: { OUT11: 2 } }, output: "ad.safetensors" });
    const r = await runMerge(m, { kernels });
    expect(r.plan.entries.find((e) => e.key === key)).toMatchObject({ action: "copy", note: expect.stringMatching(/missing in model_c/) });
    expect((await readTensor(r.outputPath, key)).values).toEqual((await readTensor(files[0]!, key)).values);
    expect(r.plan.entries.find((e) => e.key.startsWith("model.diffusion_model.output_blocks.3"))?.params).toMatchObject({ alpha: 0.5 });
    const plain = manifestIn(dir, { models: models([1, 1, 1]), output: "unused.safetensors" });
    const cons = await runMerge(plain, { kernels, overrides: { mergeMethod: "consensus", output: join(dir, "c.safetensors") } });
    expect(cons.plan.params).toEqual({ exponent: 4 });
    const two = manifestIn(dir, { models: models([1, 1]), merge_method: "slerp", merge_params: { t: 0.3 }, output: "s.safetensors" });
    expect((await runMerge(two, { kernels })).bytesWritten).toBeGreaterThan(0);
  });
});

describe("runMerge VAE baking", () => {
  it("replaces first_stage_model.* with a diffusers-named VAE, cast to the model's dtype", async () => {
    const { dir } = await setup(2);
    const vaePath = await writeTinyModel(join(dir, "vae.safetensors"), {
      seed: 9,
      dtype: "F32",
      layout: [
        { name: "decoder.conv_in.weight", shape: [4, 4, 3, 3] },
        { name: "decoder.mid_block.attentions.0.to_q.weight", shape: [4, 4] },
      ],
    });
    const m = manifestIn(dir, { models: models([0.5, 0.5]), vae: { path: "vae.safetensors" }, output: "out.safetensors" });
    const r = await runMerge(m, { kernels });
    const q = await readTensor(r.outputPath, "first_stage_model.decoder.mid.attn_1.q.weight");
    expect(q.dtype).toBe("F16");
    const src = await readTensor(vaePath, "decoder.mid_block.attentions.0.to_q.weight");
    expect(maxUlpF16(q.values, src.values)).toBe(0);
    expect(JSON.parse((await openSafetensors(r.outputPath).then(async (s) => { const md = s.metadata; await s.close(); return md; })).sd_merge_recipe!).vae).toEqual({ name: "vae.safetensors", hash: "unknown", file_size: statSync(vaePath).size });
  });
});

describe("runMerge safety", () => {
  it("--dry-run plans without writing anything", async () => {
    const { dir } = await setup();
    const r = await runMerge(manifestIn(dir, { models: models(weights), output: "out.safetensors" }), { dryRun: true });
    expect(r.dryRun).toBe(true);
    expect(existsSync(r.outputPath)).toBe(false);
    expect(r.plan.outputBytes).toBeGreaterThan(0);
    expect(r.plan.estimatedPeakBytes).toBeGreaterThan(0);
  });

  it("never overwrites without the flag, and leaves no partial output when a merge fails", async () => {
    const { dir } = await setup(2);
    writeFileSync(join(dir, "out.safetensors"), "keep");
    const m = manifestIn(dir, { models: models([0.5, 0.5]), output: "out.safetensors" });
    await expect(runMerge(m, { kernels })).rejects.toMatchObject({ code: "MERGE_OUTPUT_EXISTS" });
    const boom = async () => { throw new Error("boom"); };
    const failing = { ...kernels, weightedSum: boom, weightedSumEncoded: boom } as KernelBackend;
    await expect(runMerge(m, { kernels: failing, overrides: { overwrite: true } })).rejects.toThrow("boom");
    expect(readdirSync(dir).sort()).toEqual(["m.json", "model_a.safetensors", "model_b.safetensors", "out.safetensors"]);
    const ok = await runMerge(m, { kernels, overrides: { overwrite: true } });
    expect(ok.bytesWritten).toBeGreaterThan(4);
  });

  it("reports progress up to the output size", async () => {
    const { dir } = await setup(2);
    const events: { bytesDone: number; bytesTotal: number }[] = [];
    const r = await runMerge(manifestIn(dir, { models: models([0.5, 0.5]), output: "out.safetensors" }), { kernels, onProgress: (e) => events.push(e) });
    expect(events.length).toBeGreaterThan(5);
    expect(events.at(-1)).toMatchObject({ bytesDone: r.plan.outputBytes, bytesTotal: r.plan.outputBytes, tensorsDone: r.plan.entries.length });
    expect(events.every((e, i) => i === 0 || e.bytesDone >= events[i - 1]!.bytesDone)).toBe(true);
  });
});

describe("runMerge never runs code named by a manifest", () => {
  /** Importing this plugin leaves a marker file beside it, so a test sees whether it ran. */
  const plugin = `import { writeFileSync } from "node:fs";
writeFileSync(new URL("./imported.marker", import.meta.url), "imported");
const params = { safeParse: (v) => ({ success: true, data: v ?? {} }), parse: (v) => v ?? {} };
export const mergeMethods = [{ name: "elementwise_max", description: "max", params, arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true,
  async merge(ctx, tensors) { for (let i = 0; i < ctx.out.length; i++) ctx.out[i] = Math.max(...tensors.map((t) => t[i])); return ctx.out; } }];
`;

  it("refuses a manifest's plugins (even on --dry-run), names the --plugin flag, and imports nothing", async () => {
    const { dir } = await setup(2);
    writeFileSync(join(dir, "evil.mjs"), plugin);
    const m = manifestIn(dir, { models: models([0.5, 0.5]), merge_method: "elementwise_max", plugins: ["./evil.mjs", "some-package"], output: "out.safetensors" });
    const refused = runMerge(m, { dryRun: true, pluginDir: join(dir, "..") });
    await expect(refused).rejects.toMatchObject({ code: "MANIFEST_PLUGINS_NOT_LOADED" });
    await expect(refused).rejects.toThrow(`--plugin ./${dir.split("/").at(-1)}/evil.mjs --plugin some-package`);
    await expect(runMerge(m, { kernels, pluginDir: dir })).rejects.toMatchObject({ code: "MANIFEST_PLUGINS_NOT_LOADED" });
    expect(existsSync(join(dir, "imported.marker"))).toBe(false);
    expect(existsSync(join(dir, "out.safetensors"))).toBe(false);
  });

  it("refuses data: and other URL plugins in a manifest outright", async () => {
    const { dir } = await setup(2);
    const marker = join(dir, "data.marker");
    const code = `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "ran");`;
    const m = manifestIn(dir, { models: models([0.5, 0.5]), plugins: [`data:text/javascript,${encodeURIComponent(code)}`] });
    await expect(runMerge(m, { dryRun: true, pluginDir: dir, plugins: [] })).rejects.toMatchObject({ code: "MANIFEST_PLUGIN_REFUSED" });
    expect(existsSync(marker)).toBe(false);
  });

  it("loads the plugin when the user names it with --plugin, resolved from the user's folder", async () => {
    const { dir } = await setup(2);
    writeFileSync(join(dir, "max.mjs"), plugin);
    const m = manifestIn(dir, { models: models([0.5, 0.5]), merge_method: "elementwise_max", plugins: ["./max.mjs"], output: "out.safetensors" });
    const r = await runMerge(m, { kernels, plugins: ["./max.mjs"], pluginDir: dir });
    expect(r.plan.method).toBe("elementwise_max");
    expect(existsSync(join(dir, "imported.marker"))).toBe(true);
  });
});

describe("runMerge writes only where the user said", () => {
  it("ignores a manifest's overwrite: true (only --overwrite replaces), and refuses outputs outside its folder unless -o is given", async () => {
    const { dir } = await setup(2);
    writeFileSync(join(dir, "out.safetensors"), "keep");
    const m = manifestIn(dir, { models: models([0.5, 0.5]), output: "out.safetensors", overwrite: true });
    await expect(runMerge(m, { kernels })).rejects.toMatchObject({ code: "MERGE_OUTPUT_EXISTS" });
    expect((await runMerge(m, { dryRun: true })).warnings.some((w) => w.includes('"overwrite": true is ignored'))).toBe(true);
    const outside = manifestIn(dir, { models: models([0.5, 0.5]), output: "../escaped.safetensors" });
    await expect(runMerge(outside, { dryRun: true })).rejects.toMatchObject({ code: "MANIFEST_OUTPUT_REFUSED" });
    expect(existsSync(join(dir, "..", "escaped.safetensors"))).toBe(false);
    const chosen = await runMerge(outside, { kernels, overrides: { output: join(dir, "chosen.safetensors") } });
    expect(existsSync(chosen.outputPath)).toBe(true);
    expect(readdirSync(dir).filter((f) => f.startsWith("."))).toEqual([]);
  });
});

describe("runMerge never destroys an input", () => {
  it("refuses -o link/model_a.safetensors --overwrite where link is the inputs' folder", async () => {
    const { symlinkSync, readFileSync } = await import("node:fs");
    const { dir, files } = await setup(2);
    symlinkSync(dir, join(dir, "..", `${dir.split("/").at(-1)}-link`));
    const through = join(dir, "..", `${dir.split("/").at(-1)}-link`, "model_a.safetensors");
    const before = readFileSync(files[0]!);
    const m = manifestIn(dir, { models: models([0.5, 0.5]) });
    await expect(runMerge(m, { kernels, overrides: { output: through, overwrite: true } })).rejects.toMatchObject({ code: "OUTPUT_IS_INPUT" });
    expect(readFileSync(files[0]!).equals(before)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(["m.json", "model_a.safetensors", "model_b.safetensors"]);
    (await import("node:fs")).rmSync(join(dir, "..", `${dir.split("/").at(-1)}-link`));
  });
});
