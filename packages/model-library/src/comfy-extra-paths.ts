import { stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { LibraryError } from "./library-error.js";

/**
 * ComfyUI folder keys → A1111/Forge folders below its root (the mapping of ComfyUI's
 * extra_model_paths.yaml.example).
 */
export const A1111_COMFY_FOLDERS: readonly (readonly [string, readonly string[]])[] = [
  ["checkpoints", ["models/Stable-diffusion"]],
  ["configs", ["models/Stable-diffusion"]],
  ["vae", ["models/VAE"]],
  ["loras", ["models/Lora", "models/LyCORIS"]],
  ["upscale_models", ["models/ESRGAN", "models/RealESRGAN", "models/SwinIR"]],
  ["embeddings", ["embeddings"]],
  ["hypernetworks", ["models/hypernetworks"]],
  ["controlnet", ["models/ControlNet"]],
];

/** A YAML scalar for a path: plain when that is unambiguous, else double-quoted (JSON quoting is valid YAML). */
function yamlScalar(text: string): string {
  return /^[A-Za-z0-9_./~$-][A-Za-z0-9_./:~$ -]*$/.test(text) && !/[: ]$/.test(text) && !text.includes(": ") && !text.includes(" #") ? text : JSON.stringify(text);
}

/**
 * The `a1111:` section of a ComfyUI `extra_model_paths.yaml` pointing at an A1111/Forge root:
 * `base_path` (absolute, `/` separators) and the folder keys, several folders as a `|` block,
 * as ComfyUI's `utils/extra_config.py` reads them (each non-empty line joined to `base_path`).
 */
export function comfyExtraModelPathsYaml(a1111Root: string): string {
  const base = resolve(a1111Root).replace(/\\/g, "/");
  const lines = ["# ComfyUI extra_model_paths.yaml written by stmerge: ComfyUI also lists the models of this A1111/Forge install.", "a1111:", `  base_path: ${yamlScalar(base)}`];
  for (const [key, folders] of A1111_COMFY_FOLDERS) {
    if (folders.length === 1) lines.push(`  ${key}: ${yamlScalar(folders[0]!)}`);
    else lines.push(`  ${key}: |`, ...folders.map((f) => `    ${f}`));
  }
  return `${lines.join("\n")}\n`;
}

/** Checks that a folder looks like an A1111/Forge root (has `models/Stable-diffusion`). */
export async function assertA1111Root(root: string): Promise<void> {
  const abs = resolve(root);
  try {
    if ((await stat(join(abs, "models", "Stable-diffusion"))).isDirectory()) return;
  } catch {
    // fall through to the error
  }
  throw new LibraryError("LIBRARY_NOT_A1111", `${abs}: not an A1111/Forge folder (no models/Stable-diffusion inside)`, { file: abs });
}
