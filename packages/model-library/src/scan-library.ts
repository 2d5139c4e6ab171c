import { lstatSync, readdirSync, type Dirent, type Stats } from "node:fs";
import { readlink, realpath, stat } from "node:fs/promises";
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

/** Sidecar names of a folder by the model base name they belong to (one pass over the folder). */
function sidecarsByBase(names: readonly string[]): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const name of names) {
    if (isModelName(name)) continue;
    const lower = name.toLowerCase();
    for (const suffix of SIDECAR_SUFFIXES) {
      if (!lower.endsWith(suffix) || lower.length === suffix.length) continue;
      const base = name.slice(0, name.length - suffix.length);
      const list = map.get(base);
      if (list) list.push(name);
      else map.set(base, [name]);
    }
  }
  for (const list of map.values()) list.sort();
  return map;
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
  const toSniff: number[] = [];
  const brokenLinks: LinkProblem[] = [];
  const escapingLinks: LinkProblem[] = [];
  const folderLinks: LinkProblem[] = [];
  const partialDownloads: string[] = [];
  const unreadable: { path: string; reason: string }[] = [];
  let foldersDone = 0;
  let foldersFound = walkRoots.length;

  const addFile = (root: string, dir: string, name: string, folderKind: ModelKind | undefined, info: Stats, sidecars: () => Map<string, string[]>, target?: string): void => {
    const base = name.slice(0, -extname(name).length);
    const file: LibraryFile = {
      path: dir + sep + name,
      root,
      kind: folderKind ?? "other",
      kindSource: folderKind ? "folder" : "none",
      type: target ? "symlink" : "file",
      ...(target ? { target } : {}),
      dev: info.dev,
      ino: info.ino,
      size: info.size,
      mtimeMs: info.mtimeMs,
      sidecars: sidecars().get(base) ?? [],
    };
    files.push(file);
    if (/\.(safetensors|sft)$/i.test(name) && (sniff === "all" || (sniff === "unknown" && !folderKind))) toSniff.push(files.length - 1);
  };

  const visitLink = async (root: string, dir: string, name: string, folderKind: ModelKind | undefined, sidecars: () => Map<string, string[]>): Promise<void> => {
    const path = join(dir, name);
    let target: string;
    try {
      target = await realpath(path);
    } catch {
      if (isModelName(name)) brokenLinks.push({ path, target: await readlink(path).catch(() => "?") });
      return;
    }
    try {
      const t = await stat(target);
      if (!insideRoots(target)) {
        if (t.isDirectory() || isModelName(name)) escapingLinks.push({ path, target });
        return;
      }
      if (t.isDirectory()) folderLinks.push({ path, target });
      else if (t.isFile() && isModelName(name)) addFile(root, dir, name, folderKind, t, sidecars, target);
    } catch (error) {
      unreadable.push({ path, reason: errnoReason(error) });
    }
  };

  // Folder paths are absolute and normalized, so `dir + sep + name` is the path (path.join costs
  // more than the lstat here). Listing and lstat are synchronous within one folder (100,000 async round trips through the
  // thread pool cost several times more); the event loop gets a turn between folders.
  const walkDir = async (root: string, dir: string): Promise<string[]> => {
    options.signal?.throwIfAborted();
    let items: Dirent[];
    try {
      items = readdirSync(dir, { withFileTypes: true });
    } catch (error) {
      unreadable.push({ path: dir, reason: errnoReason(error) });
      return [];
    }
    let byBase: Map<string, string[]> | undefined;
    const sidecars = () => (byBase ??= sidecarsByBase(items.map((i) => i.name)));
    const folderKind = kindForFolders(relative(root, dir).split(sep).filter(Boolean));
    const subdirs: string[] = [];
    const links: string[] = [];
    for (const item of items) {
      const name = item.name;
      if (item.isDirectory()) {
        if (!name.startsWith(".")) subdirs.push(join(dir, name));
        continue;
      }
      const lower = name.toLowerCase();
      if (PARTIAL_DOWNLOAD_EXTENSIONS.some((e) => lower.endsWith(e))) {
        if (isModelName(name.slice(0, -extname(name).length))) partialDownloads.push(join(dir, name));
        continue;
      }
      if (item.isSymbolicLink()) {
        links.push(name);
        continue;
      }
      if (!item.isFile() || !isModelName(name)) continue;
      let info: Stats;
      try {
        info = lstatSync(dir + sep + name);
      } catch (error) {
        unreadable.push({ path: join(dir, name), reason: errnoReason(error) });
        continue;
      }
      addFile(root, dir, name, folderKind, info, sidecars);
    }
    await mapLimit(links, concurrency, (name) => visitLink(root, dir, name, folderKind, sidecars), options.signal);
    foldersDone++;
    foldersFound += subdirs.length;
    options.onProgress?.({ phase: "scan", bytesDone: foldersDone, bytesTotal: foldersFound, detail: dir });
    await new Promise((resolveTurn) => setImmediate(resolveTurn));
    return subdirs;
  };

  for (const root of walkRoots) {
    // Breadth first; the folders of one level are listed side by side.
    let level = [root];
    while (level.length > 0) {
      const next: string[] = [];
      for (const d of level) next.push(...(await walkDir(root, d)));
      level = next;
    }
  }
  await mapLimit(
    toSniff,
    Math.min(concurrency, 8),
    async (i) => {
      const f = files[i]!;
      const sniffed = await sniffModelKind(f.path);
      if (sniffed) files[i] = { ...f, kind: sniffed, kindSource: "content" };
    },
    options.signal,
  );

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
