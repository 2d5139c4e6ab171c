import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { writeSafetensors } from "@stmerge/core-tensors";
import { writeMixedDtypeModel } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { describeModelFile } from "./describe-model-file.js";

const LORA_FIXTURES = fileURLToPath(new URL("../../test/fixtures/lora/", import.meta.url));

let dir: string;
let model: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-describe-"));
  model = join(dir, "model.safetensors");
  await writeMixedDtypeModel(model);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("describeModelFile", () => {
  it("counts tensors, parameters and dtypes, keeps the metadata, and lists keys in order up to the limit", async () => {
    const d = await describeModelFile(model, { keyLimit: 2 });
    expect(d).toMatchObject({ file: model, tensorCount: 3, parameterCount: 12 + 5 + 2, dtypes: { F16: 1, I64: 1, F32: 1 }, metadata: { "modelspec.title": "tiny test model" } });
    expect(d.keys.map((k) => k.name)).toEqual(["cond_stage_model.transformer.text_model.embeddings.position_ids", "first_stage_model.encoder.conv_in.bias"]);
    expect(d.keys[0]).toEqual({ name: "cond_stage_model.transformer.text_model.embeddings.position_ids", dtype: "I64", shape: [1, 5] });
    expect(d.headerBytes).toBeGreaterThan(0);
    // 8-byte length prefix + header + 72 bytes of tensor data.
    expect(d.fileSize).toBe(8 + d.headerBytes + 72);
    expect(d.lora).toBeUndefined();
    expect((await describeModelFile(model)).keys).toHaveLength(3);
  });

  it("names the file kind and the architecture with its evidence (SDXL from attn2.to_k width 2048)", async () => {
    const sdxl = join(dir, "sdxl.safetensors");
    await writeSafetensors(sdxl, [
      { name: "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", dtype: "F16", shape: [2, 2048], data: new Uint8Array(8192) },
      { name: "conditioner.embedders.1.model.ln_final.weight", dtype: "F16", shape: [4], data: new Uint8Array(8) },
    ]);
    const d = await describeModelFile(sdxl);
    expect(d.kind).toBe("sd-checkpoint");
    expect(d.architecture).toMatchObject({ id: "sdxl", label: "SDXL", variant: "standard" });
    expect(d.architecture.evidence.length).toBeGreaterThan(0);
  });

  it("describes a torch-made LoRA with the alpha scalars read from the file", async () => {
    const d = await describeModelFile(join(LORA_FIXTURES, "sdxl-kohya-lora.safetensors"));
    // tools/fixtures/lora_fixtures.py writes alphas 2, 4, 1, 0 (and none for proj_in).
    expect(d.lora).toMatchObject({ modules: 11, formats: { lora: 11 }, rank: { min: 2, max: 4 }, alphas: [0, 1, 2, 4], baseArchitecture: "SDXL" });
  });

  it("refuses a file that is not safetensors with the reader's code", async () => {
    const ckpt = join(dir, "old.ckpt");
    writeFileSync(ckpt, Buffer.concat([Buffer.from("PK\x03\x04"), Buffer.alloc(64)]));
    await expect(describeModelFile(ckpt)).rejects.toMatchObject({ code: "NOT_SAFETENSORS", file: ckpt });
  });
});
