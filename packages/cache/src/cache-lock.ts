import { randomBytes } from "node:crypto";
import { hostname } from "node:os";
import { link, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { CacheError } from "./cache-schema.js";

export interface CacheLockOptions {
  /** Give up after this long; default 15 s. */
  timeoutMs?: number;
  /** A lock older than this is stale even if its process seems alive; default 60 s. */
  staleMs?: number;
}

interface LockBody {
  pid: number;
  host: string;
  created: number;
  token: string;
}

export type ReleaseLock = () => Promise<void>;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function readLock(path: string): Promise<{ body: LockBody | undefined; mtimeMs: number } | undefined> {
  try {
    const [text, info] = await Promise.all([readFile(path, "utf8"), stat(path)]);
    let body: LockBody | undefined;
    try {
      body = JSON.parse(text) as LockBody;
    } catch {
      body = undefined; // being written right now, or garbage: judged by age only
    }
    return { body, mtimeMs: info.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function isStale(lock: { body: LockBody | undefined; mtimeMs: number }, staleMs: number): boolean {
  const age = Date.now() - (lock.body?.created ?? lock.mtimeMs);
  if (age > staleMs) return true;
  if (lock.body && lock.body.host === hostname() && !processAlive(lock.body.pid)) return true;
  return false;
}

/**
 * Removes a stale lock without racing another remover: the lock is renamed away first, and if
 * what was renamed turns out to be a fresh lock someone just took, it is linked back.
 */
async function breakStaleLock(path: string, seen: LockBody | undefined): Promise<void> {
  const aside = `${path}.stale-${randomBytes(6).toString("hex")}`;
  try {
    await rename(path, aside);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return;
    throw error;
  }
  const taken = await readLock(aside);
  if (taken?.body && seen && taken.body.token !== seen.token) {
    await link(aside, path).catch(() => undefined);
  }
  await unlink(aside).catch(() => undefined);
}

/**
 * An inter-process lock: a file created with O_EXCL holding pid, host, time and a token.
 * Waits with jittered exponential backoff; a lock whose process is dead (same host) or that is
 * older than `staleMs` is broken. Returns the release function.
 */
export async function acquireCacheLock(lockPath: string, options: CacheLockOptions = {}): Promise<ReleaseLock> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const staleMs = options.staleMs ?? 60_000;
  const body: LockBody = { pid: process.pid, host: hostname(), created: Date.now(), token: randomBytes(8).toString("hex") };
  const deadline = Date.now() + timeoutMs;
  let delay = 2;
  for (;;) {
    try {
      const handle = await open(lockPath, "wx", 0o644);
      try {
        body.created = Date.now();
        await handle.writeFile(JSON.stringify(body));
        await handle.close();
      } catch (error) {
        // Disk full (or any write failure) after the file was created: an empty lock left behind
        // would block every later run until it goes stale, so the file is removed before failing.
        await handle.close().catch(() => undefined);
        await unlink(lockPath).catch(() => undefined);
        const e = error as NodeJS.ErrnoException;
        throw new CacheError("CACHE_LOCK_FAILED", `${lockPath}: cannot write the cache lock (${e.code === "ENOSPC" ? "no space left on device" : (e.code ?? e.message)})`, { file: lockPath, cause: error });
      }
      return async () => {
        const current = await readLock(lockPath).catch(() => undefined);
        if (current?.body?.token === body.token) await unlink(lockPath).catch(() => undefined);
      };
    } catch (error) {
      if (error instanceof CacheError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== "EEXIST") {
        throw new CacheError("CACHE_LOCK_FAILED", `${lockPath}: cannot create the cache lock (${code ?? (error as Error).message})`, { file: lockPath, cause: error });
      }
    }
    const holder = await readLock(lockPath);
    if (holder && isStale(holder, staleMs)) {
      await breakStaleLock(lockPath, holder.body);
      continue;
    }
    if (Date.now() >= deadline) {
      const who = holder?.body ? ` by pid ${holder.body.pid}` : "";
      throw new CacheError("CACHE_LOCKED", `${lockPath}: the cache is locked${who}; another stmerge is writing it (remove the lock file if no stmerge is running)`, { file: lockPath });
    }
    await sleep(delay * (0.5 + Math.random()));
    delay = Math.min(delay * 2, 100);
  }
}
