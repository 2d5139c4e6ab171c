import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { detectArchitecture } from "../models/detect-architecture.js";
import { architectureOfLabel, declaredArchitectureWarning } from "./check-declared-architecture.js";

describe("declaredArchitectureWarning", () => {
  const sd1 = detectArchitecture(layoutDescriptors("sd1-ldm"));
  const sdxl = detectArchitecture(layoutDescriptors("sdxl-sgm"));
  it("maps the labels of scan and the Python tool to families", () => {
    expect(["SD1.5", "SD 1.5", "sd15"].map(architectureOfLabel)).toEqual(["sd1", "sd1", "sd1"]);
    expect(["SDXL", "Pony", "Illustrious", "Noobai", "NoobAI"].map(architectureOfLabel)).toEqual(["sdxl", "sdxl", "sdxl", "sdxl", "sdxl"]);
    expect(["SD2.1", "SD3", "Flux", "SDXL Refiner"].map(architectureOfLabel)).toEqual(["sd2", "sd3", "flux", "sdxl-refiner"]);
    expect(architectureOfLabel("my custom mix")).toBeUndefined();
  });
  it("warns when the declared family differs from the tensors', naming the file, both and the evidence", () => {
    expect(declaredArchitectureWarning("/m/a.safetensors", "Illustrious", sd1)).toBe("/m/a.safetensors: the manifest says Illustrious, but its tensors are SD1.5 (attn2.to_k context 768); merging it as SD1.5");
  });
  it("stays quiet for the same family, a derivative of it, no label, or a label it does not know", () => {
    expect(declaredArchitectureWarning("a", "SD1.5", sd1)).toBeUndefined();
    expect(declaredArchitectureWarning("a", "Pony", sdxl)).toBeUndefined();
    expect(declaredArchitectureWarning("a", undefined, sd1)).toBeUndefined();
    expect(declaredArchitectureWarning("a", "my mix", sd1)).toBeUndefined();
  });
});
