import { lstat, readdir, realpath, stat } from "node:fs/promises";
import { basename, extname, join, resolve } from "node:path";
import { createLink } from "./apply-dedupe.js";
import { LibraryError } from "./library-error.js";
import type { LinkKind } from "./plan-dedupe.js";

export interface LinkModelResult {
  readonly path: string;
  readonly outcome: "linked" | "already-there";
  readonly link: LinkKind;
  /** Sidecars linked beside it (previews, .civitai.info, ...). */
  readonly sidecars: readonly string[];
}

const SIDECAR = /\.(preview\.(png|jpe?g|webp)|png|jpe?g|webp|gif|civitai\.info|info|json|txt|yaml|yml)$/i;

/**
 * Links one stored model (and its sidecars) into each folder where a UI expects it. Never
 * replaces an existing file: the same file already there is reported, another file is an error.
 */
export async function linkModel(model: string, folders: readonly string[], options: { link?: Exclude<LinkKind, "reflink"> } = {}): Promise<LinkModelResult[]> {
  const kind = options.link ?? "symlink";
  const source = resolve(model);
  let info;
  try {
    info = await stat(source);
  } catch (error) {
    throw new LibraryError("LIBRARY_MODEL_NOT_FOUND", `${source}: no such model file`, { file: source, cause: error });
  }
  if (!info.isFile()) throw new LibraryError("LIBRARY_MODEL_NOT_FOUND", `${source}: not a file`, { file: source });
  const real = await realpath(source);
  const base = basename(real, extname(real));
  const dir = join(real, "..");
  const sidecars = (await readdir(dir)).filter((n) => n.startsWith(`${base}.`) && n !== basename(real) && SIDECAR.test(n));
  const results: LinkModelResult[] = [];
  for (const folder of folders) {
    const into = resolve(folder);
    const st = await stat(into).catch(() => undefined);
    if (!st?.isDirectory()) throw new LibraryError("LIBRARY_FOLDER_NOT_FOUND", `${into}: no such folder`, { file: into });
    const target = join(into, basename(real));
    const existing = await stat(target).catch(() => undefined);
    if (existing) {
      if (existing.dev === info.dev && existing.ino === info.ino) {
        results.push({ path: target, outcome: "already-there", link: kind, sidecars: [] });
        continue;
      }
      throw new LibraryError("LIBRARY_PATH_TAKEN", `${target}: another file already has this name; nothing was replaced`, { file: target });
    }
    if (await lstat(target).catch(() => undefined)) throw new LibraryError("LIBRARY_PATH_TAKEN", `${target}: a broken link already has this name; nothing was replaced`, { file: target });
    if (kind === "hardlink" && st.dev !== info.dev) {
      throw new LibraryError("LIBRARY_CROSS_DEVICE", `${target}: a hard link cannot reach ${real} on another file system; use --link symlink`, { file: target });
    }
    await createLink(kind, real, target, { mode: info.mode, mtimeMs: info.mtimeMs });
    const linked: string[] = [];
    for (const name of sidecars) {
      const to = join(into, name);
      if (await lstat(to).catch(() => undefined)) continue;
      await createLink("symlink", join(dir, name), to, { mode: 0o644, mtimeMs: 0 });
      linked.push(name);
    }
    results.push({ path: target, outcome: "linked", link: kind, sidecars: linked });
  }
  return results;
}
