import { readdir, stat } from "node:fs/promises";
import { extname, join, relative, sep } from "node:path";

/** What the model picker lists: safetensors, and legacy pickle checkpoints (the merge reads them through safe-pickle). */
const PICKER_EXTENSIONS: readonly string[] = [".safetensors", ".ckpt", ".pt", ".pth"];
/** The picker lists at most this many files; a larger tree is cut (and says so) rather than walked without end. */
const MAX_PICKER_FILES = 2000;
/** Folders below the manifest's folder deeper than this are not entered. */
export const MAX_PICKER_DEPTH = 8;

export interface ListedModelFiles {
  /** Paths relative to `folder`, `/`-separated, sorted. */
  readonly files: readonly string[];
  /** The listing stopped at MAX_PICKER_FILES. */
  readonly truncated: boolean;
}

/**
 * The model files in a folder and its subfolders, for the editor's picker. Hidden entries are
 * skipped, links to folders are not followed (no cycles), links to files are listed; unreadable
 * subfolders are skipped silently (the picker shows what it can).
 */
export async function listModelFiles(folder: string, options: { maxFiles?: number; signal?: AbortSignal } = {}): Promise<ListedModelFiles> {
  const maxFiles = options.maxFiles ?? MAX_PICKER_FILES;
  const files: string[] = [];
  const pending: { dir: string; depth: number }[] = [{ dir: folder, depth: 0 }];
  while (pending.length > 0) {
    if (options.signal?.aborted) break;
    const { dir, depth } = pending.shift()!;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      if (entry.name.startsWith(".")) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (depth < MAX_PICKER_DEPTH) pending.push({ dir: path, depth: depth + 1 });
        continue;
      }
      if (!PICKER_EXTENSIONS.includes(extname(entry.name).toLowerCase())) continue;
      if (entry.isSymbolicLink() && !(await stat(path).catch(() => undefined))?.isFile()) continue;
      if (!entry.isFile() && !entry.isSymbolicLink()) continue;
      if (files.length >= maxFiles) return { files: sorted(files), truncated: true };
      files.push(relative(folder, path).split(sep).join("/"));
    }
  }
  return { files: sorted(files), truncated: false };
}

const sorted = (files: string[]) => files.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
