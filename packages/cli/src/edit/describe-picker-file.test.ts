import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { TORCH_FIXTURES } from "../../test/torch-fixture-dir.js";
import { describePickerFile } from "./describe-picker-file.js";

// Real torch files written by tools/fixtures/torch_checkpoints.py: the picker reads legacy
// checkpoints through safe-pickle (structure only, no code run) and tells models from LoRAs and VAEs.
describe("describePickerFile", () => {
  it("a legacy .ckpt checkpoint: its architecture and precision", async () => {
    expect(await describePickerFile(join(TORCH_FIXTURES, "sd_lightning.ckpt"))).toEqual({ kind: "checkpoint", label: "SD1.5", precision: "fp32" });
  });

  it("a LoRA and a VAE are marked as such", async () => {
    expect(await describePickerFile(join(TORCH_FIXTURES, "lora.pt"))).toEqual({ kind: "lora", label: "LoRA" });
    expect(await describePickerFile(join(TORCH_FIXTURES, "vae.pt"))).toEqual({ kind: "vae", label: "VAE" });
  });

  it("a hostile pickle is unreadable, with safe-pickle's reason, and nothing runs", async () => {
    const info = await describePickerFile(join(TORCH_FIXTURES, "hostile_in_state_dict.ckpt"));
    expect(info.kind).toBe("unreadable");
    expect(info.label).toContain("hostile_in_state_dict.ckpt");
  });
});
