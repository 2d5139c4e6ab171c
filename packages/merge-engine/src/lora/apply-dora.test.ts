import { describe, expect, it } from "vitest";
import { applyDora, doraAxis } from "./apply-dora.js";

// The bake of real DoRA files against PyTorch is in bake-lora.test.ts (tools/fixtures/lora_flux_dora.py).
describe("doraAxis", () => {
  it("reads the normalised axis from the magnitude's shape, as ComfyUI's weight_decompose does", () => {
    expect(doraAxis([1, 320], 640, [640, 320])).toBe("input"); // LyCORIS default
    expect(doraAxis([1, 4, 1, 1], 8, [8, 4, 3, 3])).toBe("input"); // conv: per input channel
    expect(doraAxis([640, 1], 640, [640, 320])).toBe("output"); // LyCORIS wd_on_out / PEFT's axis
    expect(doraAxis([8], 8, [24, 8])).toBe("output"); // a q slice of fused qkv rows: its own 8 rows
    expect(doraAxis([1, 100], 640, [640, 320])).toMatch(/fits neither the 640 output rows nor the 320 input channels/);
  });
});

describe("applyDora", () => {
  it("gives each normalised group exactly the magnitude's norm, touching only its row slice", () => {
    // W [4×2], rows 1..2 targeted; ΔW = 0 so W'' = m · W/‖W‖ per group.
    const w = Float32Array.from([9, 9, 3, 4, 6, 8, 9, 9]);
    applyDora(w, [4, 2], 1, 2, new Float32Array(4), 1, Float32Array.from([10, 1]), "output", 1);
    expect(Array.from(w.subarray(0, 2))).toEqual([9, 9]);
    expect(Array.from(w.subarray(6))).toEqual([9, 9]);
    expect(Math.hypot(w[2]!, w[3]!)).toBeCloseTo(10, 5); // row [3,4] scaled to norm 10
    expect(Math.hypot(w[4]!, w[5]!)).toBeCloseTo(1, 5); // row [6,8] scaled to norm 1
    expect(w[3]! / w[2]!).toBeCloseTo(4 / 3, 6); // direction kept
  });

  it("blends with strength as ComfyUI does: W + m′·(W″ − W); strength 0 leaves W", () => {
    const w = Float32Array.from([3, 4]);
    applyDora(w, [1, 2], 0, 1, Float32Array.from([1, 1]), 0.5, Float32Array.from([2]), "output", 0);
    expect(Array.from(w)).toEqual([3, 4]);
  });
});
