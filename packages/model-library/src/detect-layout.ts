import { readdir } from "node:fs/promises";
import { join } from "node:path";

import { INVOKEAI_BASES, INVOKEAI_TYPES } from "./model-kinds.js";

/** Which program's folder conventions a root follows. */
export type LayoutKind = "a1111" | "comfyui" | "stability-matrix" | "swarmui" | "fooocus" | "invokeai" | "plain";

export interface LibraryLayout {
  readonly root: string;
  /** Every convention recognized (a shared `models/` folder can hold both A1111's and ComfyUI's folders). */
  readonly kinds: readonly LayoutKind[];
  /** The folder holding the model-type folders (`<root>/models`, `<root>/Data/Models`, `<root>/Models`, or the root itself). */
  readonly modelsDir: string;
}

async function childNames(dir: string): Promise<Set<string>> {
  try {
    const items = await readdir(dir, { withFileTypes: true });
    return new Set(items.filter((i) => i.isDirectory() || i.isSymbolicLink()).map((i) => i.name));
  } catch {
    return new Set();
  }
}

async function kindsIn(modelsDir: string, names: Set<string>): Promise<LayoutKind[]> {
  const kinds: LayoutKind[] = [];
  if (names.has("Stable-diffusion")) kinds.push("a1111");
  // SwarmUI's SDModelFolder default is "Stable-Diffusion" (capital D; A1111 writes "Stable-diffusion").
  if (names.has("Stable-Diffusion")) kinds.push("swarmui");
  if (names.has("checkpoints") || names.has("diffusion_models") || names.has("loras")) {
    // Fooocus keeps ComfyUI's folder names plus its own inpaint/ and prompt_expansion/.
    kinds.push(names.has("inpaint") || names.has("prompt_expansion") ? "fooocus" : "comfyui");
  }
  if (names.has("StableDiffusion") || names.has("DiffusionModels")) kinds.push("stability-matrix");
  // InvokeAI: models/<base>/<type>/ (sd-1/main, sdxl/lora, any/clip_vision, …); a base folder counts only with a type folder in it.
  for (const base of [...names].filter((n) => INVOKEAI_BASES.has(n)).sort()) {
    if ([...(await childNames(join(modelsDir, base)))].some((t) => INVOKEAI_TYPES.has(t))) {
      kinds.push("invokeai");
      break;
    }
  }
  return kinds;
}

/**
 * Recognizes a root: an A1111/Forge, ComfyUI, Fooocus or InvokeAI install (`<root>/models/Stable-diffusion`,
 * `<root>/models/checkpoints`, `<root>/models/inpaint`, `<root>/models/sdxl/main`), a SwarmUI install
 * (`<root>/Models/Stable-Diffusion`), a Stability Matrix data folder (`<root>/Data/Models/StableDiffusion`
 * or `<root>/Models/StableDiffusion`), a `models/` folder given directly, or a plain folder.
 * Reads folder names only.
 */
export async function detectLayout(root: string): Promise<LibraryLayout> {
  for (const modelsDir of [join(root, "models"), join(root, "Data", "Models"), join(root, "Models"), root]) {
    const kinds = await kindsIn(modelsDir, await childNames(modelsDir));
    if (kinds.length > 0) return { root, kinds, modelsDir };
  }
  return { root, kinds: ["plain"], modelsDir: root };
}
