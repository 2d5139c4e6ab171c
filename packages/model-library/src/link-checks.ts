import { lstat, realpath, stat } from "node:fs/promises";
import { resolve } from "node:path";
import { hashFile, matches, type CacheRecorder, type ModelCache } from "@stmerge/cache";
import type { ProgressCallback } from "@stmerge/core-tensors";
import type { LinkKind } from "./plan-dedupe.js";

/**
 * SHA-256 of a file for a destructive decision: the metadata cache answers only from a record of
 * this very path whose size and mtime still match (never the cache's legacy file-name match, which
 * can name another file); otherwise the file is read and the result recorded through the caller's
 * recorder (one locked cache write per batch, see {@link withCacheRecorder}).
 */
export async function sha256Of(path: string, recorder: CacheRecorder | undefined, signal?: AbortSignal, onProgress?: ProgressCallback): Promise<{ sha256: string; fromCache: boolean; bytesRead: number }> {
  const abs = resolve(path);
  if (recorder) {
    const info = await stat(abs);
    const record = recorder.pathRecord(abs);
    if (record && matches(record, info.size, info.mtimeMs)) return { sha256: record.sha256, fromCache: true, bytesRead: 0 };
  }
  const result = await hashFile(abs, { algorithms: ["sha256"], ...(signal ? { signal } : {}), ...(onProgress ? { onProgress } : {}) });
  // Under the size and mtime the hash is true for: a file changed since then is not taken as hashed.
  if (recorder) await recorder.record(abs, { hashes: result.hashes, hashedAs: { size: result.size, mtimeMs: result.mtimeMs } });
  return { sha256: result.hashes.sha256!, fromCache: false, bytesRead: result.bytesRead };
}

/**
 * Runs `work` with a recorder on `cache` (none without a cache) and writes what it recorded at
 * the end: on success a failed write throws as a direct record would; after a failure or an
 * interrupt the hashes finished so far are still kept, and the work's own error is the one thrown.
 */
export async function withCacheRecorder<T>(cache: ModelCache | undefined, work: (recorder: CacheRecorder | undefined) => Promise<T>): Promise<T> {
  const recorder = cache ? await cache.recorder() : undefined;
  let result: T;
  try {
    result = await work(recorder);
  } catch (error) {
    await recorder?.flush().catch(() => undefined);
    throw error;
  }
  await recorder?.flush();
  return result;
}

/**
 * Whether `path` now shows exactly the master's bytes through a link of this kind: a symlink
 * resolving to the master, a hard link sharing its inode, or a clone with the expected SHA-256.
 */
export async function linkResolvesToMaster(path: string, master: string, link: LinkKind, sha256: string): Promise<boolean> {
  try {
    const l = await lstat(path);
    const m = await stat(master);
    if (link === "symlink") {
      if (!l.isSymbolicLink()) return false;
      const [target, real] = await Promise.all([stat(path), realpath(master)]);
      return (await realpath(path)) === real && target.dev === m.dev && target.ino === m.ino;
    }
    if (link === "hardlink") return l.isFile() && l.dev === m.dev && l.ino === m.ino;
    if (!l.isFile() || l.size !== m.size) return false;
    return (await hashFile(path, { algorithms: ["sha256"] })).hashes.sha256 === sha256;
  } catch {
    return false;
  }
}

/**
 * Whether a freshly made link at `path` shows exactly the master's bytes, read through the link:
 * the link is of the expected kind (a symlink resolving to the master, a hard link sharing its
 * inode, a clone as a regular file), has the group's size, and its bytes have the group's SHA-256.
 * Checked before the link is renamed over the duplicate, so a wrong link never replaces it.
 */
export async function linkShowsMasterBytes(path: string, master: string, link: LinkKind, expected: { sha256: string; size: number }, signal?: AbortSignal): Promise<boolean> {
  try {
    if (link === "reflink") {
      if (!(await lstat(path)).isFile()) return false;
    } else if (!(await linkResolvesToMaster(path, master, link, expected.sha256))) return false;
    if ((await stat(path)).size !== expected.size) return false;
    const read = await hashFile(path, { algorithms: ["sha256"], ...(signal ? { signal } : {}) });
    return read.hashes.sha256 === expected.sha256;
  } catch {
    return false;
  }
}
