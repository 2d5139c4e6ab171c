import { realpath, statfs } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import type { DuplicateGroup } from "./find-duplicates.js";
import { LibraryError } from "./library-error.js";
import type { LibraryFile, LibraryIdentity } from "./scan-library.js";
import { isInside } from "./scan-library.js";

export type LinkMode = "symlink" | "hardlink" | "reflink" | "auto";
export type LinkKind = "symlink" | "hardlink" | "reflink";

/** Replace one duplicate path by a link to the master. */
export interface DedupeAction {
  readonly master: string;
  readonly duplicate: string;
  readonly link: LinkKind;
  /** Why this kind of link (for `auto`, what the file system allows). */
  readonly reason: string;
  readonly sha256: string;
  readonly size: number;
  readonly mtimeMs: number;
  readonly dev: number;
  readonly ino: number;
  /** Sidecars beside the duplicate: they stay where they are, beside the link, where each UI looks for them. */
  readonly sidecars: readonly string[];
}

export interface DedupePlanGroup {
  readonly sha256: string;
  readonly size: number;
  readonly master: string;
  /** Why this file is the master. */
  readonly masterReason: string;
  readonly actions: readonly DedupeAction[];
}

export interface DedupePlan {
  readonly roots: readonly string[];
  readonly mode: LinkMode;
  readonly groups: readonly DedupePlanGroup[];
  /** Bytes freed once every action is applied. */
  readonly savedBytes: number;
}

export interface PlanDedupeOptions {
  /** A folder: in each group, the copy under it is the master. */
  master?: string;
  link?: LinkMode;
}

// ComfyUI's folder names (folder_paths.py), case as ComfyUI writes them: the strategy keeps the
// master copy in ComfyUI's `checkpoints/`-style folders and links A1111's names to it.
const COMFY_FOLDERS = new Set(["checkpoints", "loras", "vae", "embeddings", "upscale_models", "controlnet", "diffusion_models", "unet", "text_encoders", "clip", "clip_vision", "hypernetworks", "vae_approx", "style_models", "gligen"]);

// statfs magic numbers of Linux file systems that clone extents (FICLONE).
const CLONING_FS: Readonly<Record<number, string>> = { 0x9123683e: "btrfs", 0x58465342: "XFS", 0x6a656a63: "bcachefs" };

function regularPaths(id: LibraryIdentity): LibraryFile[] {
  return id.paths.filter((p) => p.type === "file");
}

function chooseMaster(group: DuplicateGroup, masterDir: string | undefined): { id: LibraryIdentity; path: string; reason: string } {
  if (masterDir) {
    for (const id of group.identities) {
      const p = regularPaths(id).find((f) => isInside(f.path, masterDir));
      if (p) return { id, path: p.path, reason: `under --master ${masterDir}` };
    }
  }
  for (const id of group.identities) {
    const p = regularPaths(id).find((f) => dirname(f.path).split(sep).some((d) => COMFY_FOLDERS.has(d)));
    if (p) return { id, path: p.path, reason: "in a ComfyUI-style folder" };
  }
  const oldest = [...group.identities].sort((a, b) => a.mtimeMs - b.mtimeMs || (a.path < b.path ? -1 : 1))[0]!;
  return { id: oldest, path: oldest.path, reason: masterDir ? `oldest copy (none under --master ${masterDir})` : "oldest copy" };
}

async function fsName(path: string): Promise<string | undefined> {
  try {
    const s = await statfs(path);
    return CLONING_FS[Number(s.type) >>> 0];
  } catch {
    return undefined;
  }
}

async function chooseLink(mode: LinkMode, master: LibraryIdentity, dup: LibraryFile): Promise<{ link: LinkKind; reason: string }> {
  const sameFs = master.dev === dup.dev;
  if (mode === "symlink") return { link: "symlink", reason: "--link symlink" };
  if (mode === "hardlink" || mode === "reflink") {
    if (!sameFs) {
      throw new LibraryError(
        "LIBRARY_CROSS_DEVICE",
        `${dup.path}: a ${mode === "hardlink" ? "hard link" : "reflink"} cannot reach ${master.path} on another file system; use --link symlink or --link auto`,
        { file: dup.path },
      );
    }
    return { link: mode, reason: `--link ${mode}` };
  }
  if (!sameFs) return { link: "symlink", reason: "auto: the master is on another file system, so only a symlink reaches it" };
  const cloning = await fsName(dirname(dup.path));
  if (cloning) return { link: "reflink", reason: `auto: ${cloning} clones files (each UI keeps a real file; the space is shared)` };
  return { link: "hardlink", reason: "auto: same file system, which does not clone; a hard link keeps a real file name" };
}

/**
 * One master per duplicate group (the copy under `master`, else one in a ComfyUI-style folder,
 * else the oldest) and, for every other path holding the same bytes, the link that replaces it.
 * Changes nothing.
 */
export async function planDedupe(roots: readonly string[], groups: readonly DuplicateGroup[], options: PlanDedupeOptions = {}): Promise<DedupePlan> {
  const mode = options.link ?? "symlink";
  let masterDir: string | undefined;
  if (options.master) {
    try {
      masterDir = await realpath(resolve(options.master));
    } catch (error) {
      throw new LibraryError("LIBRARY_MASTER_NOT_FOUND", `${resolve(options.master)}: --master folder not found`, { file: resolve(options.master), cause: error });
    }
  }
  const out: DedupePlanGroup[] = [];
  let savedBytes = 0;
  for (const group of groups) {
    const master = chooseMaster(group, masterDir);
    const actions: DedupeAction[] = [];
    for (const id of group.identities) {
      if (id === master.id) continue;
      for (const file of regularPaths(id)) {
        const { link, reason } = await chooseLink(mode, master.id, file);
        actions.push({ master: master.path, duplicate: file.path, link, reason, sha256: group.sha256, size: id.size, mtimeMs: id.mtimeMs, dev: id.dev, ino: id.ino, sidecars: file.sidecars });
      }
      savedBytes += id.size;
    }
    out.push({ sha256: group.sha256, size: group.size, master: master.path, masterReason: master.reason, actions });
  }
  return { roots, mode, groups: out, savedBytes };
}
