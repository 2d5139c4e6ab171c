import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { detectLayout } from "./detect-layout.js";
import { kindForFolders } from "./model-kinds.js";

const dirs: string[] = [];
async function tree(paths: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "stmerge-layout-"));
  dirs.push(dir);
  for (const p of paths) await mkdir(join(dir, p), { recursive: true });
  return dir;
}
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe("detectLayout", () => {
  it("recognizes an A1111/Forge install", async () => {
    const root = await tree(["models/Stable-diffusion", "models/Lora", "embeddings"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["a1111"], modelsDir: join(root, "models") });
  });
  it("recognizes a ComfyUI install", async () => {
    const root = await tree(["models/checkpoints", "models/loras", "custom_nodes"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["comfyui"], modelsDir: join(root, "models") });
  });
  it("recognizes a shared models/ folder holding both (the strategy's layout)", async () => {
    const root = await tree(["checkpoints", "Stable-diffusion", "clip_vision"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["a1111", "comfyui"], modelsDir: root });
  });
  it("recognizes Stability Matrix shared folders", async () => {
    const root = await tree(["Data/Models/StableDiffusion", "Data/Models/Lora"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["stability-matrix"], modelsDir: join(root, "Data", "Models") });
  });
  it("recognizes a SwarmUI install (Models/Stable-Diffusion, capital D)", async () => {
    const root = await tree(["Models/Stable-Diffusion", "Models/Lora", "Models/VAE", "Models/Embeddings", "Models/controlnet", "Models/clip", "Models/clip_vision", "Data", "src"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["swarmui"], modelsDir: join(root, "Models") });
  });
  it("recognizes a Fooocus install (ComfyUI's names plus inpaint/ and prompt_expansion/)", async () => {
    const root = await tree(["models/checkpoints", "models/loras", "models/embeddings", "models/vae_approx", "models/upscale_models", "models/inpaint", "models/controlnet", "models/clip_vision", "models/prompt_expansion/fooocus_expansion", "models/safety_checker"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["fooocus"], modelsDir: join(root, "models") });
  });
  it("recognizes an InvokeAI install (models/<base>/<type>), but not a lone folder named like a base", async () => {
    const root = await tree(["models/sd-1/main", "models/sdxl/lora", "models/any/clip_vision", "models/.download_cache", "databases"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["invokeai"], modelsDir: join(root, "models") });
    const notInvoke = await tree(["models/sdxl/my favourites"]);
    expect(await detectLayout(notInvoke)).toEqual({ root: notInvoke, kinds: ["plain"], modelsDir: notInvoke });
  });
  it("falls back to a plain folder", async () => {
    const root = await tree(["my models/sdxl"]);
    expect(await detectLayout(root)).toEqual({ root, kinds: ["plain"], modelsDir: root });
  });
});

describe("kindForFolders", () => {
  it("maps each UI's folder names and lets the nearest known folder win", () => {
    expect(kindForFolders(["models", "Stable-diffusion"])).toBe("checkpoint");
    expect(kindForFolders(["models", "checkpoints", "sdxl"])).toBe("checkpoint");
    expect(kindForFolders(["Data", "Models", "StableDiffusion"])).toBe("checkpoint");
    expect(kindForFolders(["models", "Lora", "styles"])).toBe("lora");
    expect(kindForFolders(["models", "LyCORIS"])).toBe("lora");
    expect(kindForFolders(["models", "VAE"])).toBe("vae");
    expect(kindForFolders(["embeddings"])).toBe("embedding");
    expect(kindForFolders(["models", "ESRGAN"])).toBe("upscaler");
    expect(kindForFolders(["models", "upscale_models"])).toBe("upscaler");
    expect(kindForFolders(["models", "ControlNet"])).toBe("controlnet");
    expect(kindForFolders(["models", "controlnet", "T2IAdapter"])).toBe("controlnet");
    expect(kindForFolders(["models", "unet"])).toBe("diffusion-model");
    expect(kindForFolders(["models", "clip_vision"])).toBe("clip-vision");
    expect(kindForFolders(["stuff", "sdxl"])).toBeUndefined();
    // SwarmUI and Fooocus folder names.
    expect(kindForFolders(["Models", "Stable-Diffusion", "OfficialStableDiffusion"])).toBe("checkpoint");
    expect(kindForFolders(["Models", "Embeddings"])).toBe("embedding");
    expect(kindForFolders(["models", "vae_approx"])).toBe("vae");
    // InvokeAI type folders count only under a base folder.
    expect(kindForFolders(["models", "sdxl", "main"])).toBe("checkpoint");
    expect(kindForFolders(["models", "sd-1", "embedding"])).toBe("embedding");
    expect(kindForFolders(["models", "flux", "t5_encoder", "t5_bnb_int8"])).toBe("text-encoder");
    expect(kindForFolders(["models", "any", "spandrel_image_to_image"])).toBe("upscaler");
    expect(kindForFolders(["models", "sdxl", "ip_adapter"])).toBe("controlnet");
    expect(kindForFolders(["projects", "main"])).toBeUndefined();
  });
});
