import { constants, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CHECKPOINT_KEYS, safetensorsBytes, sha256, T0, writeFile } from "../test/library-tree.js";
import { linkModel } from "./link-model.js";

const dirs: string[] = [];
function tempDir(base = tmpdir()): string {
  const d = mkdtempSync(join(base, "stmerge-library-link-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function store(base: string) {
  const bytes = safetensorsBytes(CHECKPOINT_KEYS, 20_000, 21);
  const model = join(base, "store/m.safetensors");
  writeFile(model, bytes, T0);
  writeFile(join(base, "store/m.preview.png"), "png", T0);
  const into = join(base, "ComfyUI/models/checkpoints");
  mkdirSync(into, { recursive: true });
  return { bytes, model, into, target: join(into, "m.safetensors") };
}

// What the file system under the test's temp folder does with a clone (ext4 and tmpfs refuse it).
const tmpClones = (() => {
  const probe = mkdtempSync(join(tmpdir(), "stmerge-library-link-probe-"));
  try {
    writeFile(join(probe, "a"), "x");
    try {
      copyFileSync(join(probe, "a"), join(probe, "b"), constants.COPYFILE_FICLONE_FORCE);
      return true;
    } catch {
      return false;
    }
  } finally {
    rmSync(probe, { recursive: true, force: true });
  }
})();

describe("linkModel --link reflink|auto", () => {
  it.skipIf(tmpClones)("auto on a file system that does not clone: a hard link, saying why; a second run finds it there", async () => {
    const s = store(tempDir());
    const [r] = await linkModel(s.model, [s.into], { link: "auto" });
    expect(r).toMatchObject({ path: s.target, outcome: "linked", link: "hardlink", sidecars: ["m.preview.png"] });
    expect(r!.reason).toMatch(/^auto: no clone \((ENOTSUP|EOPNOTSUPP|EXDEV|ENOSYS|EINVAL|ENOTTY): this file system does not clone\); a hard link keeps a real file name on the same file system$/);
    expect(statSync(s.target).ino).toBe(statSync(s.model).ino);
    expect(readlinkSync(join(s.into, "m.preview.png"))).toBe("../../../store/m.preview.png");
    // No temp left from the clone attempt.
    expect(readdirSync(s.into).filter((n) => n.includes(".stmerge-"))).toEqual([]);
    expect(await linkModel(s.model, [s.into], { link: "auto" })).toEqual([{ path: s.target, outcome: "already-there", link: "hardlink", sidecars: [] }]);
  });

  it.skipIf(tmpClones)("reflink on a file system that does not clone: one clear error, nothing created", async () => {
    const s = store(tempDir());
    await expect(linkModel(s.model, [s.into], { link: "reflink" })).rejects.toMatchObject({
      code: "LIBRARY_NO_REFLINK",
      message: expect.stringMatching(new RegExp(`^${s.target.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: this file system cannot clone files \\((ENOTSUP|EOPNOTSUPP|EXDEV|ENOSYS|EINVAL|ENOTTY)\\); use --link auto, hardlink or symlink$`)),
    });
    expect(readdirSync(s.into)).toEqual([]);
  });

  it.skipIf(!existsSync("/dev/shm") || statSync("/dev/shm").dev === statSync(tmpdir()).dev)("auto across file systems: a relative symlink, saying why; reflink is refused before anything changes", async () => {
    const s = store(tempDir());
    const other = join(tempDir("/dev/shm"), "models/checkpoints");
    mkdirSync(other, { recursive: true });
    const [r] = await linkModel(s.model, [other], { link: "auto" });
    expect(r).toMatchObject({ outcome: "linked", link: "symlink", reason: "auto: the model is on another file system, so neither a clone nor a hard link reaches it; used a relative symlink" });
    expect(lstatSync(join(other, "m.safetensors")).isSymbolicLink()).toBe(true);
    expect(sha256(readFileSync(join(other, "m.safetensors")))).toBe(sha256(s.bytes));
    const other2 = join(tempDir("/dev/shm"), "loras");
    mkdirSync(other2);
    await expect(linkModel(s.model, [other2], { link: "reflink" })).rejects.toMatchObject({ code: "LIBRARY_CROSS_DEVICE" });
    expect(readdirSync(other2)).toEqual([]);
  });
});
