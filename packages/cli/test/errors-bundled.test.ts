import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";

// A few wrong inputs run through the bundled binary as a user would: exit code, one stderr line
// without a stack, the JSON error object, nothing written.
let bin: string;
let dir: string;

function stmerge(args: string[]) {
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, STMERGE_CACHE: join(dir, "cache.json") }, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

beforeAll(async () => {
  bin = await bundleStmerge();
  dir = mkdtempSync(join(tmpdir(), "stmerge-errors-bundled-"));
  mkdirSync(join(dir, "dir.ckpt"));
}, 120_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("stmerge binary, wrong inputs", () => {
  it("bare stmerge: help on stdout, exit 0", () => {
    const r = stmerge([]);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^Usage: stmerge/);
    expect(r.err).toBe("");
  });

  it("a folder given as a model file: one line naming it, exit 1, --json object on stdout, nothing written", () => {
    const r = stmerge(["extract-vae", "dir.ckpt", "--json"]);
    expect(r.code).toBe(1);
    expect(r.err.trim().split("\n")).toEqual([`stmerge: ${join(dir, "dir.ckpt")}: is a folder, not a file [FILE_UNREADABLE]`]);
    expect(JSON.parse(r.out)).toEqual({ error: { code: "FILE_UNREADABLE", message: `${join(dir, "dir.ckpt")}: is a folder, not a file`, file: join(dir, "dir.ckpt") } });
    expect(readdirSync(dir).sort()).toEqual(["dir.ckpt"]);
  });

  it("hash --algo md5: usage error, exit 2, with --json the BAD_FLAG error object", () => {
    const r = stmerge(["hash", "x.safetensors", "--algo", "md5", "--json"]);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/^stmerge: --algo: unknown hash algorithm "md5"/);
    expect(r.err).not.toMatch(/\n\s+at /);
    expect(JSON.parse(r.out)).toMatchObject({ error: { code: "BAD_FLAG", file: null } });
  });
});
