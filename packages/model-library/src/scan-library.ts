import type { Dirent } from "node:fs";
import { lstat, readdir, readlink, realpath, stat } from "node:fs/promises";
import { extname, join, relative, resolve, sep } from "node:path";
import { detectLayout, type LibraryLayout } from "./detect-layout.js";
import { LibraryError } from "./library-error.js";
import { mapLimit } from "./map-limit.js";
import { kindForFolders, LIBRARY_MODEL_EXTENSIONS, MODEL_KINDS, PARTIAL_DOWNLOAD_EXTENSIONS, type ModelKind } from "./model-kinds.js";
import { sniffModelKind } from "./sniff-model-kind.js";

/** Extensions of files that belong to a model `<base>.<ext>` (A1111, ComfyUI managers, Civitai Helper). */
const SIDECAR_SUFFIXES = [".preview.png", ".preview.jpg", ".preview.jpeg", ".preview.webp", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".civitai.info", ".info", ".json", ".txt", ".yaml", ".yml"];

/** One model path found under a root: a regular file or a symlink to one inside the roots. */
export interface LibraryFile {
  readonly path: string;
  readonly root: string;
  readonly kind: ModelKind;
  /** How the kind was decided: the folder's name, the tensor names in the header, or neither. */
  readonly kindSource: "folder" | "content" | "none";
  /** `symlink`: the path is a symbolic link whose target (`target`, real path) is inside the roots. */
  readonly type: "file" | "symlink";
  readonly target?: string;
  /** Identity of the bytes: device and inode of the regular file (the target, for a link). */
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  /** Sidecar file names beside the path (`<base>.preview.png`, `<base>.civitai.info`, ...). */
  readonly sidecars: readonly string[];
}

/** One stored file (device + inode) and every path under the roots that shows it. */
export interface LibraryIdentity {
  readonly key: string;
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
  /** A regular-file path of it (hard links: the first in path order). */
  readonly path: string;
  readonly paths: readonly LibraryFile[];
}

export interface LinkProblem {
  readonly path: string;
  readonly target: string;
}

export interface LibraryScan {
  readonly roots: readonly string[];
  readonly layouts: readonly LibraryLayout[];
  /** Every model path in path order. */
  readonly files: readonly LibraryFile[];
  /** Files by device + inode: hard links and symlinks to one file are one identity. */
  readonly identities: readonly LibraryIdentity[];
  /** Links pointing nowhere. */
  readonly brokenLinks: readonly LinkProblem[];
  /** Links (to files or folders) whose target is outside every root; never followed. */
  readonly escapingLinks: readonly LinkProblem[];
  /** Folder links inside the roots (their files are found at the real location). */
  readonly folderLinks: readonly LinkProblem[];
  /** Files still being downloaded (`.part`, `.crdownload`, ...): neither hashed nor replaced. */
  readonly partialDownloads: readonly string[];
  readonly unreadable: readonly { path: string; reason: string }[];
  readonly byKind: Readonly<Record<ModelKind, { files: number; bytes: number }>>;
}

export interface ScanLibraryOptions {
  /** Read the header of safetensors files whose folder does not tell the kind ("unknown", default), of all ("all"), or of none. */
  sniff?: "unknown" | "all" | "none";
  /** Parallel file-system calls; default 32. */
  concurrency?: number;
  /** `detail` is the folder being listed; `bytesDone` counts folders listed, `bytesTotal` folders found so far. */
  onProgress?: (event: { phase: "scan"; bytesDone: number; bytesTotal: number; detail: string }) => void;
  signal?: AbortSignal;
}

export function isInside(path: string, dir: string): boolean {
  return path === dir || path.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

function isModelName(name: string): boolean {
  return LIBRARY_MODEL_EXTENSIONS.includes(extname(name).toLowerCase());
}

function sidecarsOf(base: string, names: readonly string[]): string[] {
  return names.filter((n) => n.startsWith(`${base}.`) && !isModelName(n) && SIDECAR_SUFFIXES.some((s) => n.toLowerCase() === `${base.toLowerCase()}${s}`)).sort();
}

function errnoReason(error: unknown): string {
  const code = (error as NodeJS.ErrnoException).code;
  return code === "EACCES" || code === "EPERM" ? "permission denied" : code === "ENOENT" ? "vanished during the scan" : (code ?? (error as Error).message);
}

/**
 * Lists every model file under the roots: its kind (by folder, else by the header's tensor
 * names), its identity (device + inode), its sidecars, and the links already in place. Links
 * out of the roots are reported, never followed; folder links are not descended into.
 */
export async function scanLibrary(roots: readonly string[], options: ScanLibraryOptions = {}): Promise<LibraryScan> {
  const concurrency = options.concurrency ?? 32;
  const sniff = options.sniff ?? "unknown";
  const realRoots: string[] = [];
  for (const r of roots) {
    const abs = resolve(r);
    let info;
    try {
      info = await stat(abs);
    } catch (error) {
      throw new LibraryError("LIBRARY_ROOT_NOT_FOUND", `${abs}: ${errnoReason(error) === "vanished during the scan" ? "no such folder" : errnoReason(error)}`, { file: abs, cause: error });
    }
    if (!info.isDirectory()) throw new LibraryError("LIBRARY_ROOT_NOT_FOLDER", `${abs}: not a folder`, { file: abs });
    const real = await realpath(abs);
    if (!realRoots.some((x) => isInside(real, x))) realRoots.push(real);
  }
  // A root inside another root is walked once, as part of the outer one.
  const walkRoots = realRoots.filter((r) => !realRoots.some((o) => o !== r && isInside(r, o)));
  const insideRoots = (p: string) => walkRoots.some((r) => isInside(p, r));

  const files: LibraryFile[] = [];
  const brokenLinks: LinkProblem[] = [];
  const escapingLinks: LinkProblem[] = [];
  const folderLinks: LinkProblem[] = [];
  const partialDownloads: string[] = [];
  const unreadable: { path: string; reason: string }[] = [];
  let foldersDone = 0;
  let foldersFound = walkRoots.length;

  const visitEntry = async (root: string, dir: string, item: Dirent, names: readonly string[], subdirs: string[]): Promise<void> => {
    const path = join(dir, item.name);
    if (item.isDirectory()) {
      if (!item.name.startsWith(".")) subdirs.push(path);
      return;
    }
    const lower = item.name.toLowerCase();
    if (PARTIAL_DOWNLOAD_EXTENSIONS.some((e) => lower.endsWith(e))) {
      if (isModelName(item.name.slice(0, -extname(item.name).length))) partialDownloads.push(path);
      return;
    }
    let type: "file" | "symlink" = "file";
    let target: string | undefined;
    let info;
    try {
      if (item.isSymbolicLink()) {
        try {
          target = await realpath(path);
        } catch {
          if (isModelName(item.name)) brokenLinks.push({ path, target: await readlink(path).catch(() => "?") });
          return;
        }
        const t = await stat(target);
        if (!insideRoots(target)) {
          if (t.isDirectory() || isModelName(item.name)) escapingLinks.push({ path, target });
          return;
        }
        if (t.isDirectory()) {
          folderLinks.push({ path, target });
          return;
        }
        if (!t.isFile() || !isModelName(item.name)) return;
        type = "symlink";
        info = t;
      } else {
        if (!item.isFile() || !isModelName(item.name)) return;
        info = await lstat(path);
      }
    } catch (error) {
      unreadable.push({ path, reason: errnoReason(error) });
      return;
    }
    const segments = relative(root, dir).split(sep).filter(Boolean);
    let kind: ModelKind | undefined = kindForFolders(segments);
    let kindSource: LibraryFile["kindSource"] = kind ? "folder" : "none";
    const sniffable = /\.(safetensors|sft)$/i.test(item.name);
    if (sniffable && (sniff === "all" || (sniff === "unknown" && !kind))) {
      const sniffed = await sniffModelKind(path);
      if (sniffed) {
        kind = sniffed;
        kindSource = "content";
      }
    }
    const base = item.name.slice(0, -extname(item.name).length);
    files.push({
      path,
      root,
      kind: kind ?? "other",
      kindSource,
      type,
      ...(target ? { target } : {}),
      dev: info.dev,
      ino: info.ino,
      size: info.size,
      mtimeMs: info.mtimeMs,
      sidecars: sidecarsOf(base, names),
    });
  };

  const walkDir = async (root: string, dir: string): Promise<string[]> => {
    options.signal?.throwIfAborted();
    let items: Dirent[];
    try {
      items = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      unreadable.push({ path: dir, reason: errnoReason(error) });
      return [];
    }
    const names = items.map((i) => i.name);
    const subdirs: string[] = [];
    await mapLimit(items, concurrency, (item) => visitEntry(root, dir, item, names, subdirs), options.signal);
    foldersDone++;
    foldersFound += subdirs.length;
    options.onProgress?.({ phase: "scan", bytesDone: foldersDone, bytesTotal: foldersFound, detail: dir });
    return subdirs;
  };

  for (const root of walkRoots) {
    // Breadth first; the folders of one level are listed side by side.
    let level = [root];
    while (level.length > 0) {
      const next = await mapLimit(level, Math.max(1, Math.ceil(concurrency / 8)), (d) => walkDir(root, d), options.signal);
      level = next.flat();
    }
  }

  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const byKey = new Map<string, LibraryFile[]>();
  for (const f of files) {
    const key = `${f.dev}:${f.ino}`;
    const list = byKey.get(key);
    if (list) list.push(f);
    else byKey.set(key, [f]);
  }
  const identities: LibraryIdentity[] = [];
  for (const [key, list] of byKey) {
    const first = list.find((f) => f.type === "file") ?? list[0]!;
    identities.push({ key, dev: first.dev, ino: first.ino, size: first.size, mtimeMs: first.mtimeMs, path: first.type === "file" ? first.path : first.target!, paths: list });
  }
  const byKind = Object.fromEntries(MODEL_KINDS.map((k) => [k, { files: 0, bytes: 0 }])) as Record<ModelKind, { files: number; bytes: number }>;
  for (const id of identities) {
    const k = byKind[id.paths[0]!.kind];
    k.files++;
    k.bytes += id.size;
  }
  const layouts = await Promise.all(realRoots.map((r) => detectLayout(r)));
  const byPath = (a: LinkProblem, b: LinkProblem) => (a.path < b.path ? -1 : 1);
  return {
    roots: realRoots,
    layouts,
    files,
    identities,
    brokenLinks: brokenLinks.sort(byPath),
    escapingLinks: escapingLinks.sort(byPath),
    folderLinks: folderLinks.sort(byPath),
    partialDownloads: partialDownloads.sort(),
    unreadable: unreadable.sort((a, b) => (a.path < b.path ? -1 : 1)),
    byKind,
  };
}
