import { realpath, stat } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { TensorIoError } from "./errors.js";

async function identity(path: string): Promise<{ dev: number; ino: number } | undefined> {
  try {
    const s = await stat(path);
    return { dev: s.dev, ino: s.ino };
  } catch {
    return undefined;
  }
}

/** The real path a (possibly not yet existing) file would have: its folder's real path plus its name. */
async function realTarget(path: string): Promise<string> {
  try {
    return await realpath(path);
  } catch {
    try {
      return join(await realpath(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}

/**
 * Refuses an output that is one of the inputs under another name: compared by device + inode
 * when the output exists (symlinks, hard links, `link/../in.ckpt`, case-insensitive file
 * systems), else by real path. Writing it would destroy the input it is being made from.
 */
export async function assertNotSameFile(output: string, inputs: readonly string[]): Promise<void> {
  const out = await identity(output);
  const outReal = out ? undefined : await realTarget(output);
  for (const input of inputs) {
    const same = out ? await identity(input).then((i) => i !== undefined && i.dev === out.dev && i.ino === out.ino) : outReal === (await realTarget(input));
    if (same) {
      throw new TensorIoError("OUTPUT_IS_INPUT", `${output}: is the same file as the input ${input}; writing it would destroy the input (choose another output)`, { file: output });
    }
  }
}
