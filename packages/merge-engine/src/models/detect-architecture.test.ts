import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { detectArchitecture } from "./detect-architecture.js";

const rename = (ds: ReturnType<typeof layoutDescriptors>, from: RegExp, to: string) => ds.map((d) => ({ ...d, name: d.name.replace(from, to) }));
const reshape = (ds: ReturnType<typeof layoutDescriptors>, name: string, shape: number[]) => ds.map((d) => (d.name === name ? { ...d, shape } : d));

describe("detectArchitecture on the real key layouts", () => {
  it.each([
    ["sd1-ldm", "sd1", "ldm", "SD1.5"],
    ["sd1-kohya", "sd1", "kohya", "SD1.5"],
    ["sdxl-sgm", "sdxl", "sgm", "SDXL"],
    ["sdxl-kohya", "sdxl", "kohya", "SDXL"],
    ["sd3-comfyui", "sd3", "comfyui", "SD3"],
    ["flux-flux", "flux", "comfyui", "Flux"],
  ] as const)("%s → %s (%s)", (layout, architecture, keyLayout, label) => {
    const r = detectArchitecture(layoutDescriptors(layout));
    expect(r.architecture).toBe(architecture);
    expect(r.layout).toBe(keyLayout);
    expect(r.label).toBe(label);
    expect(r.variant).toBe("standard");
  });

  it("reads the context width of each UNet", () => {
    expect(detectArchitecture(layoutDescriptors("sd1-ldm")).contextDim).toBe(768);
    expect(detectArchitecture(layoutDescriptors("sdxl-sgm")).contextDim).toBe(2048);
  });

  it("detects a UNet-only SDXL file and a Flux diffusion-model-only file", () => {
    const unet = rename(layoutDescriptors("sdxl-sgm", ["diffuser"]).filter((d) => d.name.startsWith("model.diffusion_model.")), /^model\.diffusion_model\./, "");
    expect(detectArchitecture(unet)).toMatchObject({ architecture: "sdxl", layout: "unet-ldm" });
    const flux = rename(layoutDescriptors("flux-flux", ["diffuser"]), /^model\.diffusion_model\./, "");
    expect(detectArchitecture(flux)).toMatchObject({ architecture: "flux", layout: "flux", prediction: "flow" });
  });

  it("detects text-encoder-only files from their probes", () => {
    expect(detectArchitecture(layoutDescriptors("sd1-ldm", ["clip_l"])).architecture).toBe("sd1");
    expect(detectArchitecture(layoutDescriptors("sdxl-sgm", ["clip_l", "clip_g"])).architecture).toBe("sdxl");
  });

  it("detects SD2 from a 1024-wide context and OpenCLIP text encoder", () => {
    let sd2 = layoutDescriptors("sd1-ldm").map((d) => (/attn2\.to_k\.weight$/.test(d.name) ? { ...d, shape: [d.shape[0]!, 1024] } : d));
    expect(detectArchitecture(sd2)).toMatchObject({ architecture: "sd2", label: "SD2.1", prediction: "unknown" });
    sd2 = [{ name: "cond_stage_model.model.token_embedding.weight", shape: [49408, 1024] }] as never;
    expect(detectArchitecture(sd2).architecture).toBe("sd2");
    expect(detectArchitecture(sd2, { metadata: { "modelspec.architecture": "stable-diffusion-v2-768-v" } }).prediction).toBe("v");
  });

  it("detects the SDXL refiner from a 1280-wide context", () => {
    const refiner = [
      { name: "model.diffusion_model.input_blocks.4.1.transformer_blocks.0.attn2.to_k.weight", shape: [768, 1280] },
      { name: "conditioner.embedders.0.model.ln_final.weight", shape: [1280] },
    ];
    expect(detectArchitecture(refiner)).toMatchObject({ architecture: "sdxl-refiner", layout: "sgm" });
    expect(detectArchitecture([refiner[1]!]).architecture).toBe("sdxl-refiner");
  });

  it("detects inpainting and pix2pix from conv_in input channels", () => {
    const base = layoutDescriptors("sd1-ldm");
    expect(detectArchitecture(reshape(base, "model.diffusion_model.input_blocks.0.0.weight", [320, 9, 3, 3])).variant).toBe("inpainting");
    expect(detectArchitecture(reshape(base, "model.diffusion_model.input_blocks.0.0.weight", [320, 8, 3, 3])).variant).toBe("pix2pix");
    const kohya = layoutDescriptors("sd1-kohya");
    expect(detectArchitecture(reshape(kohya, "unet.conv_in.weight", [320, 9, 3, 3])).variant).toBe("inpainting");
  });

  it("finds v-prediction from marker tensors and metadata", () => {
    // sd-mecha lists the optional v-pred markers in the layout; an epsilon model has none of them.
    const withMarkers = layoutDescriptors("sdxl-sgm");
    const sdxl = withMarkers.filter((d) => !/^(v_pred|ztsnr|edm_vpred\.)/.test(d.name));
    expect(detectArchitecture(sdxl).prediction).toBe("epsilon");
    expect(detectArchitecture(withMarkers).prediction).toBe("v");
    expect(detectArchitecture([...sdxl, { name: "v_pred", dtype: "I64" as const, shape: [0], byteLength: 0 }]).prediction).toBe("v");
    expect(detectArchitecture(sdxl, { metadata: { "modelspec.prediction_type": "v" } }).prediction).toBe("v");
    expect(detectArchitecture(sdxl, { metadata: { ss_v_parameterization: "True" } }).prediction).toBe("v");
  });

  it("names SDXL derivatives only from filename or metadata hints", () => {
    const sdxl = layoutDescriptors("sdxl-sgm");
    expect(detectArchitecture(sdxl, { filename: "/m/ponyDiffusionV6XL.safetensors" }).label).toBe("Pony");
    expect(detectArchitecture(sdxl, { filename: "waiNSFWIllustrious_v110.safetensors" }).label).toBe("Illustrious");
    expect(detectArchitecture(sdxl, { filename: "noobaiXLNAIXL_vPred10.safetensors" }).label).toBe("NoobAI");
    expect(detectArchitecture(sdxl, { metadata: { "modelspec.title": "Pony Realism" } }).derivative).toBe("Pony");
    // The Python tool's bare substrings misnamed these.
    expect(detectArchitecture(sdxl, { filename: "chillout_mix.safetensors" }).label).toBe("SDXL");
    expect(detectArchitecture(sdxl, { filename: "naive_model.safetensors" }).label).toBe("SDXL");
    // Hints never override the keys: an SD1 file called "pony" is still SD1.5.
    expect(detectArchitecture(layoutDescriptors("sd1-ldm"), { filename: "pony.safetensors" }).label).toBe("SD1.5");
  });

  it("recognises standalone VAEs in both namings and reports unknown files", () => {
    const ldmVae = rename(layoutDescriptors("sd1-ldm", ["vae"]), /^first_stage_model\./, "");
    expect(detectArchitecture(ldmVae)).toMatchObject({ architecture: "vae", layout: "vae-ldm" });
    const diffusersVae = [
      { name: "encoder.down_blocks.0.resnets.0.conv1.weight", shape: [128, 128, 3, 3] },
      { name: "decoder.mid_block.attentions.0.to_q.weight", shape: [512, 512] },
    ];
    expect(detectArchitecture(diffusersVae)).toMatchObject({ architecture: "vae", layout: "vae-diffusers" });
    expect(detectArchitecture([{ name: "foo", shape: [3] }])).toMatchObject({ architecture: "unknown", label: "Unknown" });
    expect(detectArchitecture([])).toMatchObject({ architecture: "unknown" });
  });
});
