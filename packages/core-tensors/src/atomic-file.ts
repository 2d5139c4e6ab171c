import { randomBytes } from "node:crypto";
import { constants, unlinkSync } from "node:fs";
import { link, open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { TensorIoError } from "./errors.js";
import { fileSystemError } from "./file-system-error.js";

/** Temp files of this process not yet committed or aborted, so a forced exit can still remove them. */
const openTempFiles = new Set<string>();

/** Paths of this process's temp files that are still open (neither committed nor aborted). */
export function openTempPaths(): readonly string[] {
  return [...openTempFiles];
}

/**
 * Removes every open temp file synchronously; for a process that must exit now (a second Ctrl+C)
 * and cannot wait for the operations to abort. Returns the paths removed.
 */
export function removeOpenTempFilesSync(): string[] {
  const removed: string[] = [];
  for (const path of openTempFiles) {
    try {
      unlinkSync(path);
      removed.push(path);
    } catch {
      // Already gone (the operation finished its own abort meanwhile).
    }
  }
  openTempFiles.clear();
  return removed;
}

function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
}

/** True when `name` is a temp file name `createAtomicFile` gives for a target named `target`. */
export function isTempNameFor(name: string, target: string): boolean {
  return name.length === target.length + 18 && name.startsWith(`.${target}.`) && /^\.[0-9a-f]{12}\.tmp$/.test(name.slice(target.length + 1));
}

/**
 * Temp files of earlier runs that never finished (power loss, kill -9) beside `path`: hidden
 * files named `.<name>.<12 hex>.tmp`. Only files not open in this process are listed.
 */
export async function findLeftoverTempFiles(path: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch {
    return [];
  }
  const target = basename(path);
  return names.filter((n) => isTempNameFor(n, target)).map((n) => join(dirname(path), n)).filter((p) => !openTempFiles.has(p));
}

export interface AtomicFileOptions {
  /** Replace an existing target. Without it, an existing target is an `OUTPUT_EXISTS` error. */
  overwrite?: boolean;
  /** Bytes written (see `wrote`) between background fdatasyncs; default 64 MiB, 0 = none. */
  flushBehindBytes?: number;
}

const DEFAULT_FLUSH_BEHIND_BYTES = 64 * 1024 * 1024;

/**
 * A file written beside its target under a temp name and moved into place only on commit,
 * so the target is either the old file, absent, or the complete new file; never partial.
 */
export interface AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  readonly handle: FileHandle;
  /**
   * Flushes, runs `verify` on the temp file's own handle (a read-back check sees exactly what
   * this run wrote, even if another process writes the same target meanwhile), then moves it
   * into place. A failed check removes only the temp file: the target is never touched.
   */
  commit(options?: CommitOptions): Promise<void>;
  abort(): Promise<void>;
  /**
   * Tells the file that `bytes` more were written through `handle`. Every `flushBehindBytes` it
   * starts an fdatasync in the background, so the disk writes the data while the caller goes on
   * computing, and commit's final fsync waits for the last stretch only (its failure surfaces there).
   */
  wrote(bytes: number): void;
}

export interface CommitOptions {
  readonly verify?: (handle: FileHandle, tempPath: string) => Promise<void>;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

function outputExists(path: string): TensorIoError {
  return new TensorIoError("OUTPUT_EXISTS", `${path}: output already exists (use --overwrite to replace it)`, { file: path });
}

async function fsyncDirectory(dir: string): Promise<void> {
  try {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  } catch {
    // Some filesystems refuse fsync on directories; the rename itself is still atomic.
  }
}

export async function createAtomicFile(path: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
  if (!options.overwrite && (await exists(path))) throw outputExists(path);
  const dir = dirname(path);
  const tempPath = tempPathFor(path);
  let handle: FileHandle;
  try {
    handle = await open(tempPath, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o644);
  } catch (error) {
    const typed = await fileSystemError(error, dir);
    const reason = typed instanceof TensorIoError ? typed.message.slice(dir.length + 2) : ((error as NodeJS.ErrnoException).code ?? (error as Error).message);
    throw new TensorIoError("OUTPUT_NOT_WRITABLE", `${path}: cannot create a file in ${dir}: ${reason}`, { file: path, cause: error });
  }
  openTempFiles.add(tempPath);
  let settled = false;
  // Write-behind: one background fdatasync at a time, started every `flushEvery` bytes written.
  const flushEvery = options.flushBehindBytes ?? DEFAULT_FLUSH_BEHIND_BYTES;
  let unflushed = 0;
  let flushing: Promise<void> | undefined;
  let flushError: unknown;
  const wrote = (bytes: number): void => {
    if (settled || flushEvery <= 0) return;
    unflushed += bytes;
    if (unflushed < flushEvery || flushing) return;
    unflushed = 0;
    flushing = handle.datasync().then(
      () => void (flushing = undefined),
      (error: unknown) => void ((flushError ??= error), (flushing = undefined)),
    );
  };
  const abort = async (): Promise<void> => {
    if (settled) return;
    settled = true;
    await flushing;
    await handle.close().catch(() => undefined);
    await unlink(tempPath).catch(() => undefined);
    openTempFiles.delete(tempPath);
  };
  const commit = async (commitOptions: CommitOptions = {}): Promise<void> => {
    if (settled) throw new TensorIoError("OUTPUT_SETTLED", `${path}: output was already committed or aborted`, { file: path });
    try {
      await flushing;
      if (flushError !== undefined) throw flushError;
      await handle.sync();
    } catch (error) {
      await abort();
      throw await fileSystemError(error, path);
    }
    if (commitOptions.verify) {
      try {
        await commitOptions.verify(handle, tempPath);
      } catch (error) {
        await abort();
        throw error;
      }
    }
    try {
      await handle.close();
    } catch (error) {
      settled = true;
      await unlink(tempPath).catch(() => undefined);
      openTempFiles.delete(tempPath);
      throw await fileSystemError(error, path);
    }
    settled = true;
    try {
      if (options.overwrite) {
        await rename(tempPath, path);
      } else {
        // link() refuses an existing target atomically, so a file that appeared while we
        // were writing is never replaced without --overwrite.
        try {
          await link(tempPath, path);
          await unlink(tempPath);
        } catch (error) {
          const code = (error as NodeJS.ErrnoException).code;
          if (code === "EEXIST") throw outputExists(path);
          if (code === "EPERM" || code === "ENOTSUP" || code === "EOPNOTSUPP" || code === "EXDEV") {
            if (await exists(path)) throw outputExists(path);
            await rename(tempPath, path);
          } else throw error;
        }
      }
    } catch (error) {
      await unlink(tempPath).catch(() => undefined);
      openTempFiles.delete(tempPath);
      if (error instanceof TensorIoError) throw error;
      throw await fileSystemError(error, path);
    }
    openTempFiles.delete(tempPath);
    await fsyncDirectory(dir);
  };
  return { path, tempPath, handle, commit, abort, wrote };
}

/** Writes a whole small file atomically (temp file, fsync, rename). */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicFileOptions = {}): Promise<void> {
  const file = await createAtomicFile(path, options);
  try {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    let done = 0;
    while (done < bytes.byteLength) {
      const { bytesWritten } = await file.handle.write(bytes, done, bytes.byteLength - done, done);
      done += bytesWritten;
    }
  } catch (error) {
    await file.abort();
    throw await fileSystemError(error, path, { bytesNeeded: typeof data === "string" ? Buffer.byteLength(data) : data.byteLength });
  }
  await file.commit();
}
