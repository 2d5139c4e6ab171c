import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { assertNotSameFile } from "./assert-not-same-file.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-same-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
mkdirSync(join(dir, "models"));
writeFileSync(join(dir, "models", "in.ckpt"), "input");
symlinkSync(join(dir, "models"), join(dir, "link"));
linkSync(join(dir, "models", "in.ckpt"), join(dir, "hard.ckpt"));
symlinkSync(join(dir, "models", "in.ckpt"), join(dir, "alias.ckpt"));
const input = join(dir, "models", "in.ckpt");

describe("assertNotSameFile", () => {
  it.each([
    ["the same string", input],
    ["a path through a symlinked folder", join(dir, "link", "in.ckpt")],
    ["a path with .. through the link", join(dir, "link", "..", "models", "in.ckpt")],
    ["a hard link", join(dir, "hard.ckpt")],
    ["a symlink to the file", join(dir, "alias.ckpt")],
  ])("refuses %s", async (_, output) => {
    await expect(assertNotSameFile(output, [join(dir, "other.safetensors"), input])).rejects.toMatchObject({ code: "OUTPUT_IS_INPUT", file: output });
  });

  it("refuses an input named through the link when the output is the real path, and accepts distinct files", async () => {
    await expect(assertNotSameFile(input, [join(dir, "link", "in.ckpt")])).rejects.toMatchObject({ code: "OUTPUT_IS_INPUT" });
    await expect(assertNotSameFile(join(dir, "link", "out.safetensors"), [input])).resolves.toBeUndefined();
    await expect(assertNotSameFile(join(dir, "missing-folder", "in.ckpt"), [input])).resolves.toBeUndefined();
  });
});
