import { describe, expect, it } from "vitest";
import { baseModelToArchitecture, summarizeModelVersion } from "./model-version-summary.js";

describe("model version summary", () => {
  it("maps CivitAI base models to stmerge architectures in the Python tool's order", () => {
    const cases: [string | null, string | undefined][] = [
      ["SD 1.5", "SD1.5"],
      ["SD 1.4", "SD1.5"],
      ["SD 2.1 768", "SD2.1"],
      ["SDXL 1.0", "SDXL"],
      ["SDXL Turbo", "SDXL"],
      ["Pony", "Pony"],
      ["Illustrious", "Illustrious"],
      ["NoobAI", "NoobAI"],
      ["Flux.1 D", "Flux"],
      ["SD 3.5 Large", "SD3"],
      ["Other", undefined],
      [null, undefined],
    ];
    for (const [base, arch] of cases) expect(baseModelToArchitecture(base), String(base)).toBe(arch);
  });
  it("fills defaults for missing fields", () => {
    expect(summarizeModelVersion({ id: 5 })).toEqual({ model_id: null, version_id: 5, base_model: null, model_name: null, version_name: null, nsfw: false, trained_words: [], type: null });
  });
});
