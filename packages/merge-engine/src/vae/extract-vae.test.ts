import { mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { openSafetensors } from "@stmerge/core-tensors";
import { describe, expect, it } from "vitest";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { detectArchitecture } from "../models/detect-architecture.js";
import { extractVae } from "./extract-vae.js";

describe("extractVae", () => {
  it("writes first_stage_model.* as a standalone LDM-named VAE with identical bytes", async () => {
    const dir = tempDir();
    const model = await writeTinyModel(join(dir, "m.safetensors"), { seed: 1 });
    const r = await extractVae(model, join(dir, "vae.safetensors"));
    expect(r.tensors).toBe(2);
    const [src, out] = await Promise.all([openSafetensors(model), openSafetensors(r.outputPath)]);
    expect(out.descriptors.map((d) => d.name)).toEqual(["decoder.conv_in.weight", "decoder.mid.attn_1.q.weight"]);
    expect(await out.read("decoder.conv_in.weight")).toEqual(await src.read("first_stage_model.decoder.conv_in.weight"));
    expect(detectArchitecture(out.descriptors).architecture).toBe("vae");
    expect(out.metadata.stmerge_extracted_from).toBe("m.safetensors");
    await Promise.all([src.close(), out.close()]);
  });

  it("refuses a model without VAE and an existing output without overwrite", async () => {
    const dir = tempDir();
    const model = await writeTinyModel(join(dir, "m.safetensors"), { seed: 1, layout: [{ name: "model.diffusion_model.out.2.bias", shape: [4] }] });
    await expect(extractVae(model, join(dir, "v.safetensors"))).rejects.toMatchObject({ code: "EXTRACT_VAE_NONE" });
    const full = await writeTinyModel(join(dir, "full.safetensors"), { seed: 1 });
    writeFileSync(join(dir, "v.safetensors"), "keep");
    await expect(extractVae(full, join(dir, "v.safetensors"))).rejects.toMatchObject({ code: "OUTPUT_EXISTS" });
    expect(readdirSync(dir).sort()).toEqual(["full.safetensors", "m.safetensors", "v.safetensors"]);
  });
});

describe("extractVae never destroys its input", () => {
  it("refuses an output that is the model through a symlinked folder, even with overwrite", async () => {
    const dir = tempDir();
    mkdirSync(join(dir, "models"));
    const model = await writeTinyModel(join(dir, "models", "m.safetensors"), { seed: 1 });
    const before = readFileSync(model);
    symlinkSync(join(dir, "models"), join(dir, "link"));
    await expect(extractVae(model, join(dir, "link", "m.safetensors"), { overwrite: true })).rejects.toMatchObject({ code: "OUTPUT_IS_INPUT" });
    expect(readFileSync(model).equals(before)).toBe(true);
    expect(readdirSync(join(dir, "models"))).toEqual(["m.safetensors"]);
  });
});
