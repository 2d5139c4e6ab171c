import { describe, expect, it } from "vitest";
import { comfyExtraModelPathsYaml } from "./comfy-extra-paths.js";

describe("comfyExtraModelPathsYaml", () => {
  it("quotes a base_path that YAML would misread, and writes / separators", () => {
    const yaml = comfyExtraModelPathsYaml("/srv/sd webui: #1");
    expect(yaml.split("\n")[2]).toBe('  base_path: "/srv/sd webui: #1"');
    expect(comfyExtraModelPathsYaml("/srv/stable-diffusion-webui").split("\n")[2]).toBe("  base_path: /srv/stable-diffusion-webui");
  });
});
