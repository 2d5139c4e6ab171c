import { describe, expect, it } from "vitest";
import { planPruning } from "./prune-rules.js";

const names = ["model.diffusion_model.out.2.weight", "first_stage_model.decoder.conv_out.weight", "cond_stage_model.transformer.x", "model_ema.decay", "model_ema.diffusion_modelout2weight", "betas", "alphas_cumprod", "optimizer.state", "v_pred"];

describe("planPruning", () => {
  it("SD checkpoints keep model components and markers, lose EMA, schedules and training state", () => {
    const plan = planPruning(names, "sd-checkpoint", true);
    expect(plan.kept).toEqual(["model.diffusion_model.out.2.weight", "first_stage_model.decoder.conv_out.weight", "cond_stage_model.transformer.x", "v_pred"]);
    expect(plan.pruned).toHaveLength(5);
  });
  it("other formats and --no-prune keep everything", () => {
    for (const kind of ["vae", "lora", "textual-inversion", "upscaler", "unknown"] as const) expect(planPruning(names, kind, true).pruned).toEqual([]);
    expect(planPruning(names, "sd-checkpoint", false).pruned).toEqual([]);
  });
});
