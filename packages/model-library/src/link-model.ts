import { randomBytes } from "node:crypto";
import { link as hardLink, lstat, readdir, realpath, stat, unlink } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { hashFile } from "@stmerge/cache";
import { createLink } from "./apply-dedupe.js";
import { LibraryError } from "./library-error.js";
import type { LinkKind, LinkMode } from "./plan-dedupe.js";

export interface LinkModelResult {
  readonly path: string;
  readonly outcome: "linked" | "already-there";
  readonly link: LinkKind;
  /** For `auto`: which kind was used and why (what the file system allowed). */
  readonly reason?: string;
  /** Sidecars linked beside it (previews, .civitai.info, ...). */
  readonly sidecars: readonly string[];
}

const SIDECAR = /\.(preview\.(png|jpe?g|webp)|png|jpe?g|webp|gif|civitai\.info|info|json|txt|yaml|yml)$/i;
const CLONE_REFUSED = new Set(["ENOTSUP", "EOPNOTSUPP", "EXDEV", "ENOSYS", "EINVAL", "ENOTTY"]);
const HARDLINK_REFUSED = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "EXDEV"]);

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/**
 * A clone published without ever replacing a file: cloned under a temp name beside the target,
 * then hard-linked to the target's name (which fails if the name is taken) and the temp removed.
 */
async function publishClone(source: string, target: string, original: { mode: number; mtimeMs: number }): Promise<void> {
  const temp = join(dirname(target), `.${basename(target)}.stmerge-link-${randomBytes(4).toString("hex")}.tmp`);
  try {
    await createLink("reflink", source, temp, original);
    await hardLink(temp, target);
  } finally {
    await unlink(temp).catch(() => undefined);
  }
}

/**
 * Makes `target` show `source` by the kind asked for; `auto` tries a clone (each UI keeps a real
 * file, the space is shared), then a hard link (same file system), then a relative symlink, and
 * says which it used and why.
 */
async function makeLink(mode: LinkMode, source: string, target: string, info: { dev: number; mode: number; mtimeMs: number }, folderDev: number): Promise<{ link: LinkKind; reason?: string }> {
  if (mode === "symlink" || mode === "hardlink") {
    await createLink(mode, source, target, info);
    return { link: mode };
  }
  if (mode === "reflink") {
    if (folderDev !== info.dev) throw new LibraryError("LIBRARY_CROSS_DEVICE", `${target}: a reflink cannot reach ${source} on another file system; use --link symlink or --link auto`, { file: target });
    try {
      await publishClone(source, target, info);
    } catch (error) {
      const code = codeOf(error);
      if (CLONE_REFUSED.has(code)) throw new LibraryError("LIBRARY_NO_REFLINK", `${target}: this file system cannot clone files (${code}); use --link auto, hardlink or symlink`, { file: target, cause: error });
      throw error;
    }
    return { link: "reflink" };
  }
  const notes: string[] = [];
  if (folderDev !== info.dev) notes.push("the model is on another file system, so neither a clone nor a hard link reaches it");
  else {
    try {
      await publishClone(source, target, info);
      return { link: "reflink", reason: "auto: the file system clones (each UI keeps a real file; the space is shared)" };
    } catch (error) {
      const code = codeOf(error);
      if (!CLONE_REFUSED.has(code)) throw error;
      notes.push(`no clone (${code}: this file system does not clone)`);
    }
    try {
      await createLink("hardlink", source, target, info);
      return { link: "hardlink", reason: `auto: ${notes.join(", ")}; a hard link keeps a real file name on the same file system` };
    } catch (error) {
      const code = codeOf(error);
      if (!HARDLINK_REFUSED.has(code)) throw error;
      notes.push(`no hard link (${code})`);
    }
  }
  await createLink("symlink", source, target, info);
  return { link: "symlink", reason: `auto: ${notes.join(", ")}; used a relative symlink` };
}

async function sameBytes(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([hashFile(a, { algorithms: ["sha256"] }), hashFile(b, { algorithms: ["sha256"] })]);
  return x.hashes.sha256 === y.hashes.sha256;
}

/**
 * Links one stored model (and its sidecars) into each folder where a UI expects it: a symlink
 * (default), hard link, reflink (clone), or `auto` (reflink, then hard link, then symlink, saying
 * which and why). Never replaces an existing file: the same file, or an identical clone, already
 * there is reported; another file is an error.
 */
export async function linkModel(model: string, folders: readonly string[], options: { link?: LinkMode } = {}): Promise<LinkModelResult[]> {
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
        const through: LinkKind = kind === "symlink" || kind === "hardlink" ? kind : (await lstat(target)).isSymbolicLink() ? "symlink" : "hardlink";
        results.push({ path: target, outcome: "already-there", link: through, sidecars: [] });
        continue;
      }
      // A clone made earlier is its own file with the same bytes.
      if ((kind === "reflink" || kind === "auto") && (await lstat(target)).isFile() && existing.size === info.size && (await sameBytes(target, real))) {
        results.push({ path: target, outcome: "already-there", link: "reflink", sidecars: [] });
        continue;
      }
      throw new LibraryError("LIBRARY_PATH_TAKEN", `${target}: another file already has this name; nothing was replaced`, { file: target });
    }
    if (await lstat(target).catch(() => undefined)) throw new LibraryError("LIBRARY_PATH_TAKEN", `${target}: a broken link already has this name; nothing was replaced`, { file: target });
    if (kind === "hardlink" && st.dev !== info.dev) {
      throw new LibraryError("LIBRARY_CROSS_DEVICE", `${target}: a hard link cannot reach ${real} on another file system; use --link symlink`, { file: target });
    }
    const made = await makeLink(kind, real, target, { dev: info.dev, mode: info.mode, mtimeMs: info.mtimeMs }, st.dev);
    const linked: string[] = [];
    for (const name of sidecars) {
      const to = join(into, name);
      if (await lstat(to).catch(() => undefined)) continue;
      await createLink("symlink", join(dir, name), to, { mode: 0o644, mtimeMs: 0 });
      linked.push(name);
    }
    results.push({ path: target, outcome: "linked", ...made, sidecars: linked });
  }
  return results;
}
