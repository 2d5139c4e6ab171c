import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listModelFiles, MAX_PICKER_DEPTH } from "./list-model-files.js";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-picker-list-"));
  for (const sub of ["sd/xl", ".hidden", "loop-target"]) mkdirSync(join(dir, sub), { recursive: true });
  for (const f of ["a.safetensors", "B.SAFETENSORS", "legacy.ckpt", "old.pt", "older.pth", "notes.txt", "model.bin", "sd/c.safetensors", "sd/xl/d.safetensors", ".hidden/e.safetensors", "loop-target/f.safetensors"]) writeFileSync(join(dir, f), "x");
  // A link to a file is listed; a link to a folder (here one that would loop) is not followed.
  symlinkSync(join(dir, "a.safetensors"), join(dir, "link.safetensors"));
  symlinkSync(dir, join(dir, "loop-target", "back"));
  let deep = dir;
  for (let i = 0; i <= MAX_PICKER_DEPTH; i++) deep = join(deep, `d${i}`);
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "too-deep.safetensors"), "x");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("listModelFiles", () => {
  it("lists safetensors and legacy checkpoints in the folder and its subfolders, relative with /, sorted; skips hidden entries, folder links and what is too deep", async () => {
    const listed = await listModelFiles(dir);
    expect(listed).toEqual({
      files: ["B.SAFETENSORS", "a.safetensors", "legacy.ckpt", "link.safetensors", "loop-target/f.safetensors", "old.pt", "older.pth", "sd/c.safetensors", "sd/xl/d.safetensors"],
      truncated: false,
    });
  });

  it("stops at its file limit and says so", async () => {
    const listed = await listModelFiles(dir, { maxFiles: 3 });
    expect(listed.truncated).toBe(true);
    expect(listed.files).toHaveLength(3);
  });
});
