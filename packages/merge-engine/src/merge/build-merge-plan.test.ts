import { join } from "node:path";
import { openSafetensors, type TensorDescriptor, type TensorSource } from "@stmerge/core-tensors";
import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { TINY_SD1, tempDir, writeTinyModel } from "@stmerge/test-utils";
import { parseManifest } from "../manifest/load-manifest.js";
import { addDifference } from "../methods/add-difference.js";
import { dare } from "../methods/dare.js";
import { ties } from "../methods/ties.js";
import { slerp } from "../methods/slerp.js";
import { weightedSum } from "../methods/weighted-sum.js";
import { buildMergePlan, type MergePlanInput } from "./build-merge-plan.js";
import { runMerge } from "./run-merge.js";

const tiny = (over: Partial<Record<string, number[]>> = {}): TensorDescriptor[] =>
  TINY_SD1.map((t) => {
    const shape = over[t.name] ?? t.shape;
    const dtype = t.dtype ?? "F16";
    const size = dtype === "I64" ? 8 : dtype === "F32" ? 4 : 2;
    return { name: t.name, dtype, shape, byteLength: shape.reduce((a, b) => a * b, 1) * size };
  });
const input = (path: string, descriptors: TensorDescriptor[], extra: Partial<MergePlanInput> = {}): MergePlanInput => ({ name: path, path, descriptors, metadata: {}, weight: 0.5, ...extra });

describe("buildMergePlan validation (headers only), one code per error", () => {
  it("MERGE_NO_INPUTS", () => {
    expect(() => buildMergePlan([], { method: weightedSum })).toThrow(expect.objectContaining({ code: "MERGE_NO_INPUTS" }));
  });
  it("MERGE_ARITY names the roles", () => {
    expect(() => buildMergePlan([input("a", tiny()), input("b", tiny())], { method: addDifference })).toThrow(expect.objectContaining({ code: "MERGE_ARITY", message: expect.stringContaining("exactly 3 models (A, B, C)") }));
    expect(() => buildMergePlan([input("a", tiny()), input("b", tiny()), input("c", tiny())], { method: slerp })).toThrow(expect.objectContaining({ code: "MERGE_ARITY" }));
  });
  it("MERGE_BAD_PARAMS", () => {
    expect(() => buildMergePlan([input("a", tiny()), input("b", tiny())], { method: slerp, params: { t: "half" } })).toThrow(expect.objectContaining({ code: "MERGE_BAD_PARAMS", message: expect.stringContaining("t") }));
  });
  it("MERGE_ARCHITECTURE_MISMATCH names both families", () => {
    expect(() => buildMergePlan([input("sd1.safetensors", layoutDescriptors("sd1-ldm")), input("xl.safetensors", layoutDescriptors("sdxl-sgm"))], { method: weightedSum })).toThrow(
      expect.objectContaining({ code: "MERGE_ARCHITECTURE_MISMATCH", file: "xl.safetensors", message: expect.stringMatching(/SDXL.*SD1\.5/) }),
    );
  });
  it("MERGE_SHAPE_MISMATCH names the key and both shapes", () => {
    const other = tiny({ "model.diffusion_model.middle_block.1.proj_in.weight": [4, 8] });
    expect(() => buildMergePlan([input("a.safetensors", tiny()), input("b.safetensors", other)], { method: weightedSum })).toThrow(
      expect.objectContaining({ code: "MERGE_SHAPE_MISMATCH", message: "model.diffusion_model.middle_block.1.proj_in.weight: a.safetensors has shape [4, 4], b.safetensors has [4, 8]" }),
    );
  });
  it("MERGE_UNKNOWN_BLOCK for a block the architecture lacks", () => {
    expect(() => buildMergePlan([input("a", tiny(), { blockWeights: { IN12: 1 } }), input("b", tiny())], { method: weightedSum })).toThrow(expect.objectContaining({ code: "MERGE_UNKNOWN_BLOCK", message: expect.stringContaining("IN12") }));
  });
  it("MERGE_BLOCK_LIST_LENGTH for a block list of the wrong length", () => {
    expect(() => buildMergePlan([input("a", tiny(), { blockWeights: [1, 2, 3] }), input("b", tiny())], { method: weightedSum })).toThrow(
      expect.objectContaining({ code: "MERGE_BLOCK_LIST_LENGTH", message: expect.stringContaining("takes 26 (BASE … OUT11) or 27 with VAE") }),
    );
  });
  it("accepts SuperMerger-style lists for weights and block parameters", () => {
    const list = Array.from({ length: 26 }, (_, i) => i / 100);
    const plan = buildMergePlan([input("a", tiny()), input("b", tiny()), input("c", tiny())], { method: addDifference, blockParams: { alpha: list } });
    const out = plan.entries.find((e) => e.key === "model.diffusion_model.out.2.bias")!;
    expect(out.params).toMatchObject({ alpha: 0.25 });
    const weighted = buildMergePlan([input("a", tiny(), { blockWeights: list }), input("b", tiny())], { method: weightedSum });
    expect(weighted.blocks.find((b) => b.block === "IN00")?.weights[0]).toBe(0.01);
  });
  it("weights of a method that ignores them: block weights refused, differing weights warned", () => {
    expect(() => buildMergePlan([input("a", tiny(), { blockWeights: { IN04: 1 } }), input("b", tiny()), input("c", tiny())], { method: addDifference })).toThrow(expect.objectContaining({ code: "MERGE_BAD_PARAMS", message: expect.stringContaining("does not use model weights") }));
    expect(buildMergePlan([input("a", tiny(), { weight: 0.7 }), input("b", tiny()), input("c", tiny())], { method: addDifference }).warnings.join("\n")).toContain("add_difference does not use model weights; the weights 0.7/0.5/0.5 are ignored");
    expect(buildMergePlan([input("a", tiny()), input("b", tiny()), input("c", tiny())], { method: addDifference }).warnings.join("\n")).not.toContain("does not use model weights");
  });
  it("ties and dare ignore the base's weight: a non-default one (or its block weights) is warned, scan's defaults are not", () => {
    const warned = (method: typeof ties | typeof dare, ws: number[], extra: Partial<MergePlanInput> = {}) =>
      buildMergePlan(ws.map((w, i) => input("abc"[i]!, tiny(), { weight: w, ...(i === 0 ? extra : {}) })), { method }).warnings.filter((w) => w.includes("model 0's weight"));
    expect(warned(ties, [0.5, 0.3, 0.2])).toEqual(["ties does not use model 0's weight (it is the base; the other weights scale the task vectors): weight 0.5 is ignored"]);
    expect(warned(dare, [2, 1])).toHaveLength(1);
    expect(warned(ties, [1 / 3, 1 / 3, 1 / 3])).toEqual([]);
    expect(warned(dare, [1, 0.4, 0.6])).toEqual([]);
    expect(warned(ties, [0.7, 0.7, 0.7])).toEqual([]);
    expect(warned(ties, [1, 0.5, 0.5], { blockWeights: { IN00: 0.2 } })[0]).toContain("its block_weights are ignored");
    expect(buildMergePlan([input("a", tiny(), { weight: 0.9 }), input("b", tiny())], { method: weightedSum }).warnings.join("\n")).not.toContain("model 0's weight");
  });
  it("MERGE_BAD_BLOCK_PARAM for a parameter that is not block-wise", () => {
    expect(() => buildMergePlan([input("a", tiny()), input("b", tiny())], { method: weightedSum, blockParams: { normalize: { IN00: 1 } } })).toThrow(expect.objectContaining({ code: "MERGE_BAD_BLOCK_PARAM" }));
  });
  it("MERGE_VAE_MISMATCH for a VAE of another shape", () => {
    const vae = [{ name: "decoder.conv_in.weight", dtype: "F16" as const, shape: [8, 4, 3, 3], byteLength: 576 }];
    expect(() => buildMergePlan([input("a", tiny()), input("b", tiny())], { method: weightedSum, vae: { path: "vae.safetensors", descriptors: vae } })).toThrow(
      expect.objectContaining({ code: "MERGE_VAE_MISMATCH", message: expect.stringContaining("[4, 4, 3, 3]") }),
    );
    const unknown = [{ name: "decoder.nothing.weight", dtype: "F16" as const, shape: [2], byteLength: 4 }];
    expect(() => buildMergePlan([input("a", tiny()), input("b", tiny())], { method: weightedSum, vae: { path: "vae.safetensors", descriptors: unknown } })).toThrow(expect.objectContaining({ code: "MERGE_VAE_MISMATCH" }));
  });
});

describe("buildMergePlan VAE baking", () => {
  it("maps a diffusers VAE onto first_stage_model keys, reshaping linear attention to 1×1 conv", () => {
    const vae = [
      { name: "decoder.conv_in.weight", dtype: "F32" as const, shape: [4, 4, 3, 3], byteLength: 576 },
      { name: "decoder.mid_block.attentions.0.to_q.weight", dtype: "F32" as const, shape: [4, 4], byteLength: 64 },
    ];
    const plan = buildMergePlan([input("a", tiny()), input("b", tiny())], { method: weightedSum, vae: { path: "vae.safetensors", descriptors: vae } });
    const q = plan.entries.find((e) => e.key === "first_stage_model.decoder.mid.attn_1.q.weight")!;
    expect(q).toMatchObject({ action: "vae", sourceKey: "decoder.mid_block.attentions.0.to_q.weight", shape: [4, 4, 1, 1], outDtype: "F16", block: "VAE" });
  });
});

describe("buildMergePlan VAE prefix per architecture", () => {
  it("bakes into vae.* for Flux and first_stage_model.* for SD3 ComfyUI files", () => {
    const vae = [{ name: "decoder.conv_in.bias", dtype: "F32" as const, shape: [512], byteLength: 2048 }];
    const flux = layoutDescriptors("flux-flux");
    const fluxPlan = buildMergePlan([input("a", flux), input("b", flux)], { method: weightedSum, vae: { path: "ae.safetensors", descriptors: vae } });
    expect(fluxPlan.entries.find((e) => e.action === "vae")?.key).toBe("vae.decoder.conv_in.bias");
    const sd3 = layoutDescriptors("sd3-comfyui");
    const sd3Plan = buildMergePlan([input("a", sd3), input("b", sd3)], { method: weightedSum, vae: { path: "vae.safetensors", descriptors: vae } });
    expect(sd3Plan.entries.find((e) => e.action === "vae")?.key).toBe("first_stage_model.decoder.conv_in.bias");
  });
});

describe("runMerge validates before reading any tensor", () => {
  it("opens every input and checks headers, reading no tensor data when validation fails", async () => {
    const dir = tempDir();
    await writeTinyModel(join(dir, "a.safetensors"), { seed: 1 });
    await writeTinyModel(join(dir, "b.safetensors"), { seed: 2, layout: TINY_SD1.map((t) => (t.name.endsWith("out.2.bias") ? { ...t, shape: [5] } : t)) });
    let reads = 0;
    const openCounting = async (p: string): Promise<TensorSource> => {
      const s = await openSafetensors(p);
      return { ...s, get: (n: string) => s.get(n), read: (...a: Parameters<TensorSource["read"]>) => (reads++, s.read(...a)), readRange: (...a: Parameters<TensorSource["readRange"]>) => (reads++, s.readRange(...a)), close: () => s.close(), descriptors: s.descriptors, metadata: s.metadata, path: s.path };
    };
    const m = parseManifest(JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.5 }, { path: "b.safetensors", weight: 0.5 }] }), join(dir, "m.json"));
    await expect(runMerge(m, { openSource: openCounting, dryRun: false })).rejects.toMatchObject({ code: "MERGE_SHAPE_MISMATCH" });
    expect(reads).toBe(0);
  });

  it("names missing inputs, output clashes and missing output folders", async () => {
    const dir = tempDir();
    await writeTinyModel(join(dir, "a.safetensors"), { seed: 1 });
    const mk = (json: unknown) => parseManifest(JSON.stringify(json), join(dir, "m.json"));
    await expect(runMerge(mk({ models: [{ path: "a.safetensors", weight: 1 }, { path: "gone.safetensors", weight: 1 }] }), { dryRun: true })).rejects.toMatchObject({ code: "FILE_NOT_FOUND", file: join(dir, "gone.safetensors") });
    await expect(runMerge(mk({ models: [{ path: "a.safetensors", weight: 1 }], output: "a.safetensors", overwrite: true }), { dryRun: true })).rejects.toMatchObject({ code: "OUTPUT_IS_INPUT" });
    await expect(runMerge(mk({ models: [{ path: "a.safetensors", weight: 1 }], output: "no/such/dir/o.safetensors" }), { dryRun: true })).rejects.toMatchObject({ code: "MERGE_OUTPUT_DIR_MISSING" });
    await expect(runMerge(mk({ models: [{ path: "a.safetensors", weight: 1 }], merge_method: "nope" }), { dryRun: true })).rejects.toMatchObject({ code: "MERGE_UNKNOWN_METHOD" });
    await expect(runMerge(mk({ models: [{ path: "a.safetensors", weight: 1 }] }), {})).rejects.toMatchObject({ code: "MERGE_NO_KERNELS" });
  });
});

describe("buildMergePlan memory bound", () => {
  it("keeps the working buffers of element-wise methods under the budget whatever the number of models", () => {
    // SDXL's largest tensor: CLIP-G token embedding, 63 M elements.
    const big = [
      { name: "conditioner.embedders.1.model.token_embedding.weight", dtype: "F16" as const, shape: [49408, 1280], byteLength: 49408 * 1280 * 2 },
      { name: "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", dtype: "F16" as const, shape: [640, 2048], byteLength: 640 * 2048 * 2 },
    ];
    const budget = 256 * 1024 * 1024;
    const peaks = [2, 3, 10, 20].map((n) => {
      const plan = buildMergePlan(Array.from({ length: n }, (_, i) => input(`m${i}`, big)), { method: weightedSum, memoryBudgetBytes: budget });
      return plan.estimatedPeakBytes;
    });
    for (const p of peaks) expect(p).toBeLessThanOrEqual(budget);
    expect(Math.max(...peaks) / Math.min(...peaks)).toBeLessThan(1.2);
  });
});
