import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { StmergeError, TensorIoError } from "./errors.js";

function formatSize(bytes: number): string {
  const units = ["B", "KB", "MB", "GB", "TB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

async function freeBytes(path: string): Promise<number | undefined> {
  try {
    const s = await statfs(dirname(path));
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}

const ERRNO: Readonly<Record<string, readonly [code: string, reason: string]>> = {
  ENOENT: ["FILE_NOT_FOUND", "no such file or folder"],
  EISDIR: ["IS_A_FOLDER", "is a folder, not a file"],
  ENOTDIR: ["NOT_A_FOLDER", "a part of this path is a file, not a folder"],
  EACCES: ["PERMISSION_DENIED", "permission denied (check the file's and its folder's permissions)"],
  EPERM: ["PERMISSION_DENIED", "permission denied (check the file's and its folder's permissions)"],
  EROFS: ["READ_ONLY_FILE_SYSTEM", "read-only file system (write the output somewhere else with -o)"],
  EMFILE: ["TOO_MANY_OPEN_FILES", "too many open files (raise the limit with `ulimit -n` or process fewer files at once)"],
  ENFILE: ["TOO_MANY_OPEN_FILES", "too many open files (raise the limit with `ulimit -n` or process fewer files at once)"],
};

/** The errno code of a Node file-system error, or undefined. */
export function errnoOf(error: unknown): string | undefined {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" && /^E[A-Z]+$/.test(code) ? code : undefined;
}

/**
 * The one place a Node file-system error becomes a typed, one-line error naming the file and
 * what to do. Errors that are already typed (or are not errno errors) are returned unchanged.
 * `bytesNeeded` lets a full disk say how much was needed beside what is free.
 */
export async function fileSystemError(error: unknown, file: string, options: { bytesNeeded?: number | undefined } = {}): Promise<unknown> {
  if (error instanceof StmergeError) return error;
  const code = errnoOf(error);
  if (!code) return error;
  const typed = (stmergeCode: string, reason: string) => new TensorIoError(stmergeCode, `${file}: ${reason}`, { file, cause: error, details: { errno: code } });
  if (code === "ENOSPC" || code === "EDQUOT") {
    const free = await freeBytes(file);
    const needed = options.bytesNeeded === undefined ? "" : `${formatSize(options.bytesNeeded)} needed, `;
    const freeText = free === undefined ? "free space unknown" : `${formatSize(free)} free`;
    return typed("DISK_FULL", `disk full: ${needed}${freeText} (free some space or write elsewhere with -o)`);
  }
  const known = ERRNO[code];
  if (known) return typed(known[0], known[1]);
  const syscall = (error as NodeJS.ErrnoException).syscall;
  return typed("FILE_SYSTEM_ERROR", `${syscall ? `${syscall} failed: ` : ""}${code}`);
}
