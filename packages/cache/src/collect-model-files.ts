import { readdir, stat } from "node:fs/promises";
import { extname, join, resolve } from "node:path";
import { TensorIoError } from "@stmerge/core-tensors";

/** File extensions of model files stmerge identifies. */
export const MODEL_EXTENSIONS = [".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft"] as const;

export function isModelFile(path: string): boolean {
  return (MODEL_EXTENSIONS as readonly string[]).includes(extname(path).toLowerCase());
}

/**
 * Absolute paths of the model files named: files as given (any extension), folders expanded to
 * their model files (subfolders only with `recurse`), sorted, without duplicates.
 */
export async function collectModelFiles(inputs: readonly string[], options: { recurse?: boolean } = {}): Promise<string[]> {
  const out = new Set<string>();
  const walk = async (dir: string, depth: number): Promise<void> => {
    const items = await readdir(dir, { withFileTypes: true });
    for (const item of items) {
      const full = join(dir, item.name);
      if (item.isDirectory()) {
        if (options.recurse && !item.name.startsWith(".")) await walk(full, depth + 1);
      } else if ((item.isFile() || item.isSymbolicLink()) && isModelFile(item.name)) {
        const info = await stat(full).catch(() => undefined);
        if (info?.isFile()) out.add(full);
      }
    }
  };
  for (const input of inputs) {
    const abs = resolve(input);
    let info;
    try {
      info = await stat(abs);
    } catch (error) {
      throw new TensorIoError("FILE_NOT_FOUND", `${abs}: no such file or folder`, { file: abs, cause: error });
    }
    if (info.isDirectory()) await walk(abs, 0);
    else out.add(abs);
  }
  return [...out].sort();
}
