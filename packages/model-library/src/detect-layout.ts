import { readdir } from "node:fs/promises";
import { join } from "node:path";

/** Which program's folder conventions a root follows. */
export type LayoutKind = "a1111" | "comfyui" | "stability-matrix" | "plain";

export interface LibraryLayout {
  readonly root: string;
  /** Every convention recognized (a shared `models/` folder can hold both A1111's and ComfyUI's folders). */
  readonly kinds: readonly LayoutKind[];
  /** The folder holding the model-type folders (`<root>/models`, `<root>/Data/Models`, or the root itself). */
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

function kindsIn(names: Set<string>): LayoutKind[] {
  const kinds: LayoutKind[] = [];
  if (names.has("Stable-diffusion")) kinds.push("a1111");
  if (names.has("checkpoints") || names.has("diffusion_models") || names.has("loras")) kinds.push("comfyui");
  if (names.has("StableDiffusion") || names.has("DiffusionModels")) kinds.push("stability-matrix");
  return kinds;
}

/**
 * Recognizes a root: an A1111/Forge or ComfyUI install (`<root>/models/Stable-diffusion`,
 * `<root>/models/checkpoints`), a Stability Matrix data folder (`<root>/Data/Models/StableDiffusion`
 * or `<root>/Models/StableDiffusion`), a `models/` folder given directly, or a plain folder.
 * Reads folder names only.
 */
export async function detectLayout(root: string): Promise<LibraryLayout> {
  for (const modelsDir of [join(root, "models"), join(root, "Data", "Models"), join(root, "Models"), root]) {
    const kinds = kindsIn(await childNames(modelsDir));
    if (kinds.length > 0) return { root, kinds, modelsDir };
  }
  return { root, kinds: ["plain"], modelsDir: root };
}
