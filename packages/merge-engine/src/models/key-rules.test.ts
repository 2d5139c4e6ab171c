import { describe, expect, it } from "vitest";
import { layoutDescriptors, loadLayout } from "../../test/load-layout.js";
import { isCopyFromFirstKey, shouldPruneKey } from "./key-rules.js";

describe("copy-from-first keys", () => {
  it("covers position_ids in every text encoder naming, schedules and markers", () => {
    expect(isCopyFromFirstKey("cond_stage_model.transformer.text_model.embeddings.position_ids")).toBe(true);
    expect(isCopyFromFirstKey("conditioner.embedders.0.transformer.text_model.embeddings.position_ids")).toBe(true);
    expect(isCopyFromFirstKey("alphas_cumprod")).toBe(true);
    expect(isCopyFromFirstKey("v_pred")).toBe(true);
    expect(isCopyFromFirstKey("model.diffusion_model.out.2.weight")).toBe(false);
    expect(isCopyFromFirstKey("cond_stage_model.transformer.text_model.embeddings.position_embedding.weight")).toBe(false);
  });
});

describe("shouldPruneKey", () => {
  it("keeps all model components of a full SD1 checkpoint and drops EMA and schedule buffers", () => {
    const layout = loadLayout("sd1-ldm");
    for (const c of ["clip_l", "vae", "diffuser"]) for (const [k] of layout.components[c]!) expect(shouldPruneKey(k, "ldm")).toBe(false);
    for (const [k] of layout.components.ema!) expect(shouldPruneKey(k, "ldm")).toBe(true);
    for (const [k] of layout.components.scheduler!) expect(shouldPruneKey(k, "ldm")).toBe(true);
    expect(shouldPruneKey("optimizer.state", "ldm")).toBe(true);
  });

  it("keeps SDXL v-prediction markers (the Python tool dropped them)", () => {
    for (const d of layoutDescriptors("sdxl-sgm", ["diffuser"])) expect(shouldPruneKey(d.name, "sgm")).toBe(false);
    expect(shouldPruneKey("v_pred", "sgm")).toBe(false);
  });

  it("is conservative for unknown layouts, matching whole path segments only", () => {
    expect(shouldPruneKey("encoder.schema.weight", "unknown")).toBe(false);
    expect(shouldPruneKey("lr_scheduler.last_epoch", "unknown")).toBe(true);
    expect(shouldPruneKey("global_step", "unknown")).toBe(true);
    expect(shouldPruneKey("model_ema.decay", "unknown")).toBe(true);
    expect(shouldPruneKey("decoder.conv_in.weight", "vae-ldm")).toBe(false);
  });
});
