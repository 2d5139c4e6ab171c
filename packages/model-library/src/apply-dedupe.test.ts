import { cpSync, existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { buildUiTree, contentByPath, lockFolder, sha256, T0, unlockFolder, writeFile, CHECKPOINT_KEYS, safetensorsBytes } from "../test/library-tree.js";
import { applyDedupe } from "./apply-dedupe.js";
import { readJournal } from "./dedupe-journal.js";
import { findDuplicates } from "./find-duplicates.js";
import { planDedupe, type LinkMode } from "./plan-dedupe.js";
import { undoDedupe } from "./repair-journal.js";
import { scanLibrary } from "./scan-library.js";

const dirs: string[] = [];
function tempDir(base = tmpdir()): string {
  const d = mkdtempSync(join(base, "stmerge-library-apply-"));
  dirs.push(d);
  return d;
}
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function plan(roots: string[], options: { link?: LinkMode; master?: string } = {}) {
  const scan = await scanLibrary(roots);
  const found = await findDuplicates(scan);
  return planDedupe(scan.roots, found.groups, options);
}

describe("planDedupe", () => {
  it("keeps the ComfyUI checkpoints/ copy as master by default, else the one under --master", async () => {
    const tree = buildUiTree(tempDir());
    const roots = [tree.a1111, tree.comfy, tree.plain];
    const p = await plan(roots);
    expect(p.groups).toHaveLength(1);
    expect(p.groups[0]!.master).toBe(join(tree.comfy, "models/checkpoints/sdxl_base.safetensors"));
    expect(p.groups[0]!.masterReason).toBe("in a ComfyUI-style folder");
    expect(p.groups[0]!.actions.map((a) => [a.duplicate, a.link])).toEqual([
      [join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors"), "symlink"],
      [join(tree.plain, "mixed/sdxl copy.safetensors"), "symlink"],
    ]);
    expect(p.savedBytes).toBe(2 * tree.sdxl.length);
    const withMaster = await plan(roots, { master: join(tree.a1111, "models") });
    expect(withMaster.groups[0]!.master).toBe(join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors"));
    // Without a ComfyUI copy, the oldest is the master.
    const noComfy = await plan([tree.a1111, tree.plain]);
    expect(noComfy.groups[0]!.master).toBe(join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors"));
    expect(noComfy.groups[0]!.masterReason).toBe("oldest copy");
  });

  it("auto picks a hard link on one file system that does not clone (ext4, tmpfs), saying why", async () => {
    const tree = buildUiTree(tempDir());
    const p = await plan([tree.a1111, tree.comfy], { link: "auto" });
    const fsType = statSync(tree.base).dev;
    expect(fsType).toBeTypeOf("number");
    expect(p.groups[0]!.actions[0]!.link).toMatch(/^(hardlink|reflink)$/);
    expect(p.groups[0]!.actions[0]!.reason).toMatch(/^auto: /);
  });

  it.skipIf(!existsSync("/dev/shm") || statSync("/dev/shm").dev === statSync(tmpdir()).dev)("refuses hard links across file systems with a clear message", async () => {
    const a = tempDir();
    const b = tempDir("/dev/shm");
    const bytes = safetensorsBytes(CHECKPOINT_KEYS, 4000, 3);
    writeFile(join(a, "models/checkpoints/m.safetensors"), bytes);
    writeFile(join(b, "models/Stable-diffusion/m.safetensors"), bytes);
    await expect(plan([a, b], { link: "hardlink" })).rejects.toMatchObject({
      code: "LIBRARY_CROSS_DEVICE",
      message: `${join(b, "models/Stable-diffusion/m.safetensors")}: a hard link cannot reach ${join(a, "models/checkpoints/m.safetensors")} on another file system; use --link symlink or --link auto`,
    });
    const auto = await plan([a, b], { link: "auto" });
    expect(auto.groups[0]!.actions[0]).toMatchObject({ link: "symlink", reason: "auto: the master is on another file system, so only a symlink reaches it" });
  });
});

describe("applyDedupe and undoDedupe", () => {
  for (const [link, backup] of [["symlink", "hardlink"], ["hardlink", "hardlink"], ["symlink", "rename"], ["hardlink", "rename"]] as const) {
    it(`${link} (backup by ${backup}): replaces the copies, keeps sidecars beside them, and undo restores every byte, mode and mtime`, async () => {
      const tree = buildUiTree(tempDir());
      const roots = [tree.a1111, tree.comfy, tree.plain];
      const before = contentByPath(tree.base);
      const master = join(tree.comfy, "models/checkpoints/sdxl_base.safetensors");
      const masterIno = statSync(master).ino;
      const dup = join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors");
      const journal = join(tempDir(), "journal.jsonl");
      const p = await plan(roots, { link });
      const steps: string[] = [];
      const result = await applyDedupe(p, { journal, backup, onStep: (_n, what) => steps.push(what) });
      expect(result).toMatchObject({ linked: 2, skipped: 0, failed: 0 });
      expect(result.results.map((r) => r.backup)).toEqual([backup, backup]);
      // Every path shows the same bytes as before; the master is the same file, untouched.
      expect(contentByPath(tree.base)).toEqual(before);
      expect(statSync(master).ino).toBe(masterIno);
      if (link === "symlink") {
        expect(lstatSync(dup).isSymbolicLink()).toBe(true);
        expect(readlinkSync(dup)).toBe("../../../comfy/models/checkpoints/sdxl_base.safetensors");
        expect(readlinkSync(join(tree.plain, "mixed/sdxl copy.safetensors"))).toBe("../../comfy/models/checkpoints/sdxl_base.safetensors");
      } else {
        expect(lstatSync(dup).ino).toBe(masterIno);
        expect(statSync(master).nlink).toBe(3);
      }
      expect(readFileSync(join(tree.a1111, "models/Stable-diffusion/sdxl_base.preview.png"), "utf8")).toBe("png");
      // No temp file is left; a rescan finds no duplicates.
      expect(Object.keys(contentByPath(tree.base)).some((k) => k.includes("stmerge-dedupe"))).toBe(false);
      expect(Object.keys(contentByPath(tree.base, true)).filter((k) => k.includes(".stmerge-"))).toEqual([]);
      expect((await findDuplicates(await scanLibrary(roots))).groups).toEqual([]);
      const records = await readJournal(journal);
      if (backup === "rename") {
        // Journal: start, per action intent → rename → link → remove-temp → done, end; each written before its step.
        expect(records.map((r) => (r.op === "step" ? r.step : r.op))).toEqual(["start", ...Array(2).fill(["intent", "rename", "link", "remove-temp", "done"]).flat(), "end"]);
        expect(steps.slice(0, 6)).toEqual(["journal start", "journal intent", "journal step", "rename", "journal step", "link"]);
      } else {
        // Journal: start, per action intent → backup → link (staging) → replace → remove-backup → done, end; each written before its step.
        expect(records.map((r) => (r.op === "step" ? r.step : r.op))).toEqual(["start", ...Array(2).fill(["intent", "backup", "link", "replace", "remove-backup", "done"]).flat(), "end"]);
        expect(steps.slice(0, 10)).toEqual(["journal start", "journal intent", "journal step", "backup", "journal step", "link", "journal step", "replace", "journal step", "remove-backup"]);
        const intent = records.find((r) => r.op === "intent")!;
        expect(intent).toMatchObject({ v: 2, duplicate: dup, temp: expect.stringMatching(/\/\.sdxl_base\.safetensors\.stmerge-dedupe-[0-9a-f]{8}\.tmp$/), staging: expect.stringMatching(/\/\.sdxl_base\.safetensors\.stmerge-link-[0-9a-f]{8}\.tmp$/) });
      }

      const undone = await undoDedupe(journal);
      expect(undone.map((u) => u.outcome)).toEqual(["restored", "restored"]);
      expect(contentByPath(tree.base)).toEqual(before);
      const restored = lstatSync(dup);
      expect(restored.isFile() && restored.ino !== masterIno).toBe(true);
      expect(restored.mtimeMs).toBe(T0);
      expect(restored.mode & 0o777).toBe(0o644);
      expect((await findDuplicates(await scanLibrary(roots))).groups).toHaveLength(1);
      // Undo again: nothing left to do, still every byte present.
      expect((await undoDedupe(journal)).map((u) => u.outcome)).toEqual(["nothing-to-do", "nothing-to-do"]);
      expect(contentByPath(tree.base)).toEqual(before);
    });
  }

  it("skips a copy that changed since the plan", async () => {
    const tree = buildUiTree(tempDir());
    const p = await plan([tree.a1111, tree.comfy]);
    const dup = join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors");
    const changed = Buffer.from(tree.sdxl);
    changed.writeUInt8(changed.readUInt8(changed.length - 1) ^ 1, changed.length - 1);
    writeFile(dup, changed, T0 + 5000);
    const result = await applyDedupe(p, { journal: join(tempDir(), "j.jsonl") });
    expect(result.results.map((r) => [r.outcome, r.reason])).toEqual([["skipped", "changed since the plan (size or mtime)"]]);
    expect(sha256(readFileSync(dup))).toBe(sha256(changed));
  });

  it("reflink on a file system that cannot clone fails cleanly and leaves the copy as it was", async () => {
    const tree = buildUiTree(tempDir());
    const p = await plan([tree.a1111, tree.comfy], { link: "reflink" });
    const dup = join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors");
    const ino = statSync(dup).ino;
    const result = await applyDedupe(p, { journal: join(tempDir(), "j.jsonl") });
    const r = result.results[0]!;
    if (r.outcome === "linked") {
      expect(r.link).toBe("reflink"); // this file system clones
      expect(sha256(readFileSync(dup))).toBe(sha256(tree.sdxl));
    } else {
      expect(r.outcome).toBe("failed");
      expect(r.reason).toMatch(/^reflink failed \((ENOTSUP|EOPNOTSUPP|EXDEV|ENOSYS|EINVAL|ENOTTY)\)$/);
      expect(statSync(dup).ino).toBe(ino);
      expect(sha256(readFileSync(dup))).toBe(sha256(tree.sdxl));
    }
  });

  it.skipIf(process.platform === "win32")("a folder that refuses changes: the copy is kept and the failure says why", async () => {
    const tree = buildUiTree(tempDir());
    const p = await plan([tree.a1111, tree.comfy]);
    const folder = join(tree.a1111, "models/Stable-diffusion");
    const before = contentByPath(tree.base);
    lockFolder(folder);
    try {
      const result = await applyDedupe(p, { journal: join(tempDir(), "j.jsonl") });
      expect(result.failed).toBe(1);
      expect(result.results[0]!.reason).toMatch(new RegExp(`^cannot rename ${folder}/sdxl_base.safetensors \\((EACCES|EPERM)\\)$`));
    } finally {
      unlockFolder(folder);
    }
    expect(contentByPath(tree.base)).toEqual(before);
    expect(lstatSync(join(folder, "sdxl_base.safetensors")).isFile()).toBe(true);
  });

  it("a version 1 journal (rename, no staging) interrupted after its link is still undone", async () => {
    const tree = buildUiTree(tempDir());
    const before = contentByPath(tree.base);
    const dup = join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors");
    const master = join(tree.comfy, "models/checkpoints/sdxl_base.safetensors");
    const temp = join(tree.a1111, "models/Stable-diffusion/.sdxl_base.safetensors.stmerge-dedupe-0123abcd.tmp");
    // What version 1 left after "rename" and "link": the original at the temp name, a symlink at its path.
    renameSync(dup, temp);
    symlinkSync("../../../comfy/models/checkpoints/sdxl_base.safetensors", dup);
    const journal = join(tempDir(), "v1.jsonl");
    const intent = { op: "intent", i: 0, duplicate: dup, master, temp, link: "symlink", sha256: sha256(tree.sdxl), size: tree.sdxl.length, mtimeMs: T0, mode: 0o100644 };
    writeFileSync(journal, [{ op: "start", roots: [tree.a1111, tree.comfy], actions: 1, pid: 999_999_999 }, intent, { op: "step", i: 0, step: "rename" }, { op: "step", i: 0, step: "link", link: "symlink" }].map((r) => JSON.stringify({ v: 1, t: "2026-01-01T00:00:00.000Z", ...r })).join("\n") + "\n");
    expect((await undoDedupe(journal)).map((u) => u.outcome)).toEqual(["restored"]);
    expect(contentByPath(tree.base, true)).toEqual(before);
    expect(lstatSync(dup).isFile()).toBe(true);
  });

  it("copies outside the roots are never touched: a tree copied elsewhere keeps its files", async () => {
    const tree = buildUiTree(tempDir());
    const copy = tempDir();
    cpSync(tree.a1111, join(copy, "a1111"), { recursive: true });
    const p = await plan([tree.a1111, tree.comfy]);
    await applyDedupe(p, { journal: join(tempDir(), "j.jsonl") });
    expect(lstatSync(join(copy, "a1111/models/Stable-diffusion/sdxl_base.safetensors")).isFile()).toBe(true);
    expect(lstatSync(join(tree.outside, "x.safetensors")).isFile()).toBe(true);
  });
});
