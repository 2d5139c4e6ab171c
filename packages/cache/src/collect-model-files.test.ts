import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { collectModelFiles } from "./collect-model-files.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-collect-"));
  await mkdir(join(dir, "sub", "deeper"), { recursive: true });
  await mkdir(join(dir, ".hidden"));
  for (const f of ["a.safetensors", "b.CKPT", "c.pt", "notes.txt", "sub/d.pth", "sub/deeper/e.bin", ".hidden/f.safetensors"]) await writeFile(join(dir, f), "x");
  await symlink(join(dir, "a.safetensors"), join(dir, "link.safetensors"));
  await symlink(join(dir, "missing"), join(dir, "dangling.safetensors"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("collectModelFiles", () => {
  it("takes model files of a folder, subfolders only with recurse", async () => {
    const rel = (files: string[]) => files.map((f) => f.slice(dir.length + 1));
    expect(rel(await collectModelFiles([dir]))).toEqual(["a.safetensors", "b.CKPT", "c.pt", "link.safetensors"]);
    expect(rel(await collectModelFiles([dir], { recurse: true }))).toEqual(["a.safetensors", "b.CKPT", "c.pt", "link.safetensors", "sub/d.pth", "sub/deeper/e.bin"]);
  });
  it("takes files named directly whatever their extension, once", async () => {
    expect(await collectModelFiles([join(dir, "notes.txt"), join(dir, "notes.txt"), join(dir, "c.pt")])).toEqual([join(dir, "c.pt"), join(dir, "notes.txt")]);
  });
  it("a missing input is FILE_NOT_FOUND", async () => {
    await expect(collectModelFiles([join(dir, "nope")])).rejects.toMatchObject({ code: "FILE_NOT_FOUND" });
  });
});
