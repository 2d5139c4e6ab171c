import { spawnSync } from "node:child_process";
import { hostname } from "node:os";
import { mkdtemp, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { acquireCacheLock } from "./cache-lock.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-lock-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const exists = (p: string) => stat(p).then(() => true, () => false);

describe("acquireCacheLock", () => {
  it("creates a lock file naming this process and removes it on release", async () => {
    const lock = join(dir, "a.lock");
    const release = await acquireCacheLock(lock);
    const body = JSON.parse(await readFile(lock, "utf8"));
    expect(body.pid).toBe(process.pid);
    expect(body.host).toBe(hostname());
    await release();
    expect(await exists(lock)).toBe(false);
  });

  it("a second holder waits for the first to release", async () => {
    const lock = join(dir, "b.lock");
    const order: string[] = [];
    const first = await acquireCacheLock(lock);
    const second = acquireCacheLock(lock).then((release) => {
      order.push("second acquired");
      return release;
    });
    await new Promise((r) => setTimeout(r, 30));
    order.push("first releases");
    await first();
    await (await second)();
    expect(order).toEqual(["first releases", "second acquired"]);
  });

  it("times out with CACHE_LOCKED naming the holder", async () => {
    const lock = join(dir, "c.lock");
    const release = await acquireCacheLock(lock);
    await expect(acquireCacheLock(lock, { timeoutMs: 50 })).rejects.toMatchObject({ code: "CACHE_LOCKED", file: lock, message: expect.stringContaining(`pid ${process.pid}`) });
    await release();
  });

  it("breaks a lock left by a dead process", async () => {
    const lock = join(dir, "d.lock");
    // A real pid that has exited.
    const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"]).stdout.toString();
    await writeFile(lock, JSON.stringify({ pid: Number(dead), host: hostname(), created: Date.now(), token: "dead" }));
    const release = await acquireCacheLock(lock, { timeoutMs: 2000 });
    expect(JSON.parse(await readFile(lock, "utf8")).pid).toBe(process.pid);
    await release();
  });

  it("breaks a lock older than staleMs even if its holder looks alive", async () => {
    const lock = join(dir, "e.lock");
    await writeFile(lock, JSON.stringify({ pid: process.ppid, host: "other-host", created: Date.now() - 10_000, token: "old" }));
    const release = await acquireCacheLock(lock, { timeoutMs: 2000, staleMs: 5000 });
    await release();
  });

  it("an unreadable half-written lock is judged by its age", async () => {
    const lock = join(dir, "f.lock");
    await writeFile(lock, "");
    const old = new Date(Date.now() - 120_000);
    await utimes(lock, old, old);
    const release = await acquireCacheLock(lock, { timeoutMs: 2000 });
    await release();
  });

  it("release does not remove a lock someone else now holds", async () => {
    const lock = join(dir, "g.lock");
    const release = await acquireCacheLock(lock);
    await writeFile(lock, JSON.stringify({ pid: 1, host: "x", created: Date.now(), token: "someone-else" }));
    await release();
    expect(await exists(lock)).toBe(true);
  });
});

describe("acquireCacheLock on a full disk", () => {
  it("a write failure while taking the lock leaves no empty lock behind, and the next run gets the lock", async () => {
    const lock = join(dir, "full.lock");
    // Inject ENOSPC into the lock's body write: FileHandle.prototype.writeFile fails once, as Node's would.
    const { open } = await import("node:fs/promises");
    const probe = await open(lock, "w");
    const proto = Object.getPrototypeOf(probe) as { writeFile: (...args: unknown[]) => Promise<void> };
    await probe.close();
    await rm(lock);
    const original = proto.writeFile;
    let calls = 0;
    proto.writeFile = async function () {
      calls++;
      throw Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC", errno: -28, syscall: "write" });
    };
    try {
      await expect(acquireCacheLock(lock, { timeoutMs: 500 })).rejects.toMatchObject({ code: "CACHE_LOCK_FAILED", message: `${lock}: cannot write the cache lock (no space left on device)` });
    } finally {
      proto.writeFile = original;
    }
    expect(calls).toBe(1);
    expect(await exists(lock)).toBe(false);
    const release = await acquireCacheLock(lock, { timeoutMs: 500 });
    expect(JSON.parse(await readFile(lock, "utf8"))).toMatchObject({ pid: process.pid });
    await release();
  });
});
