import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { link, open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { TensorIoError } from "./errors.js";

export interface AtomicFileOptions {
  /** Replace an existing target. Without it, an existing target is an `OUTPUT_EXISTS` error. */
  overwrite?: boolean;
}

/**
 * A file written beside its target under a temp name and moved into place only on commit,
 * so the target is either the old file, absent, or the complete new file; never partial.
 */
export interface AtomicFile {
  readonly path: string;
  readonly tempPath: string;
  readonly handle: FileHandle;
  commit(): Promise<void>;
  abort(): Promise<void>;
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
  const tempPath = join(dir, `.${basename(path)}.${randomBytes(6).toString("hex")}.tmp`);
  let handle: FileHandle;
  try {
    handle = await open(tempPath, constants.O_CREAT | constants.O_EXCL | constants.O_RDWR, 0o644);
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    throw new TensorIoError("OUTPUT_NOT_WRITABLE", `${path}: cannot create a file in ${dir} (${e.code ?? e.message})`, { file: path, cause: error });
  }
  let settled = false;
  const abort = async (): Promise<void> => {
    if (settled) return;
    settled = true;
    await handle.close().catch(() => undefined);
    await unlink(tempPath).catch(() => undefined);
  };
  const commit = async (): Promise<void> => {
    if (settled) throw new TensorIoError("OUTPUT_SETTLED", `${path}: output was already committed or aborted`, { file: path });
    try {
      await handle.sync();
      await handle.close();
    } catch (error) {
      settled = true;
      await unlink(tempPath).catch(() => undefined);
      throw new TensorIoError("OUTPUT_WRITE_FAILED", `${path}: could not flush output (${(error as Error).message})`, { file: path, cause: error });
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
      if (error instanceof TensorIoError) throw error;
      throw new TensorIoError("OUTPUT_WRITE_FAILED", `${path}: could not move output into place (${(error as Error).message})`, { file: path, cause: error });
    }
    await fsyncDirectory(dir);
  };
  return { path, tempPath, handle, commit, abort };
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
    throw error;
  }
  await file.commit();
}
