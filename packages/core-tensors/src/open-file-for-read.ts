import type { Stats } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { TensorIoError } from "./errors.js";

export interface OpenedFile {
  readonly handle: FileHandle;
  readonly stats: Stats;
}

/**
 * Which file an open handle reads, as fstat gave it at open: a path renamed over later names
 * another file (other device or inode), one written in place another size or mtime.
 */
export interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
  readonly size: number;
  readonly mtimeMs: number;
}

export function fileIdentityOf(stats: Stats): FileIdentity {
  return { dev: stats.dev, ino: stats.ino, size: stats.size, mtimeMs: stats.mtimeMs };
}

/** True when both name the same file, unchanged in size and mtime. */
export function sameFileIdentity(a: FileIdentity, b: FileIdentity): boolean {
  return a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs;
}

/**
 * Opens a regular file for positioned reads, turning the usual failures into one-line typed
 * errors (`FILE_NOT_FOUND`, `FILE_UNREADABLE`) that name the file.
 */
export async function openFileForRead(path: string): Promise<OpenedFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, "r");
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const reason = e.code === "ENOENT" ? "no such file" : e.code === "EISDIR" ? "is a folder, not a file" : e.code === "EACCES" ? "permission denied" : (e.code ?? e.message);
    throw new TensorIoError(e.code === "ENOENT" ? "FILE_NOT_FOUND" : "FILE_UNREADABLE", `${path}: ${reason}`, { file: path, cause: error });
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) throw new TensorIoError("FILE_UNREADABLE", `${path}: ${stats.isDirectory() ? "is a folder, not a file" : "not a regular file"}`, { file: path });
    return { handle, stats };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}
