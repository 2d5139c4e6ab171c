import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { encodeFromF32, writeSafetensors } from "@stmerge/core-tensors";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "../test/bundle-stmerge.js";
import { invocationFolder } from "./cli-io.js";

describe("invocationFolder: `pnpm stmerge` resolves paths from the folder it was typed in", () => {
  it("uses INIT_CWD only while the CLI's own script runs", () => {
    expect(invocationFolder({ INIT_CWD: "/home/u/models", npm_lifecycle_event: "stmerge" }, "/repo")).toBe("/home/u/models");
    expect(invocationFolder({ INIT_CWD: "/home/u/models", npm_lifecycle_event: "demo" }, "/repo")).toBe("/home/u/models");
    // A test run (`pnpm test`) whose child processes inherit INIT_CWD keeps their own folder.
    expect(invocationFolder({ INIT_CWD: "/home/u", npm_lifecycle_event: "test" }, "/tmp/x")).toBe("/tmp/x");
    expect(invocationFolder({ npm_lifecycle_event: "stmerge" }, "/repo")).toBe("/repo");
    expect(invocationFolder({ INIT_CWD: "relative", npm_lifecycle_event: "stmerge" }, "/repo")).toBe("/repo");
  });
});

describe("the bundled CLI run as `pnpm stmerge` does (script in the root, INIT_CWD the user's folder)", () => {
  let dir: string;
  let bin: string;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "stmerge-init-cwd-"));
    mkdirSync(join(dir, "repo"));
    mkdirSync(join(dir, "user", "sub"), { recursive: true });
    await writeSafetensors(join(dir, "user", "sub", "a.safetensors"), [{ name: "w", dtype: "F16", shape: [2], data: encodeFromF32(Float32Array.of(1, 2), "F16") }]);
    bin = await bundleStmerge();
  }, 120_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("inspects sub/a.safetensors relative to INIT_CWD", async () => {
    const env = { PATH: process.env.PATH ?? "", HOME: dir, INIT_CWD: join(dir, "user"), npm_lifecycle_event: "stmerge", STMERGE_NO_BANNER: "1" };
    const { stdout } = await promisify(execFile)(process.execPath, [bin, "inspect", join("sub", "a.safetensors"), "--json"], { cwd: join(dir, "repo"), env });
    expect(JSON.stringify(JSON.parse(stdout))).toContain("a.safetensors");
  });
});
