import { execFileSync } from "node:child_process";
import { lstatSync, mkdtempSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { applyDedupe, findDuplicates, linkModel, planDedupe, scanLibrary, undoDedupe } from "../src/index.js";
import { mountBtrfs } from "./btrfs-mount.js";
import { buildUiTree, contentByPath, sha256, T0 } from "./library-tree.js";

// Reflink where it really works: a 128 MiB btrfs image, loop-mounted for this file (root with
// mkfs.btrfs and loop devices); skipped, and shown as skipped, where that is not permitted.
// `btrfs filesystem du` (btrfs-progs) is the independent witness that a clone shares its extents.
const btrfs = mountBtrfs();
const mnt = btrfs.mnt ?? "";
const mounted = btrfs.mnt !== undefined;
afterAll(() => btrfs.cleanup());

/** Bytes of `path` that no other file shares, as btrfs counts them. */
function exclusiveBytes(path: string): number {
  execFileSync("sync", ["-f", path]);
  const out = execFileSync("btrfs", ["filesystem", "du", "--raw", path], { encoding: "utf8" });
  return Number(out.trim().split("\n").pop()!.trim().split(/\s+/)[1]);
}

describe.skipIf(!mounted)("reflink on a loop-mounted btrfs", () => {
  it("dedupe --link reflink: each UI keeps a real file (mode, mtime kept) sharing the master's extents; undo leaves every byte", async () => {
    const tree = buildUiTree(mkdtempSync(join(mnt, "tree-")));
    const roots = [tree.a1111, tree.comfy];
    const before = contentByPath(tree.base);
    const dup = join(tree.a1111, "models/Stable-diffusion/sdxl_base.safetensors");
    const master = join(tree.comfy, "models/checkpoints/sdxl_base.safetensors");
    expect(exclusiveBytes(dup)).toBeGreaterThan(0);
    const scan = await scanLibrary(roots);
    const plan = await planDedupe(scan.roots, (await findDuplicates(scan)).groups, { link: "auto" });
    expect(plan.groups[0]!.actions.map((a) => [a.duplicate, a.link, a.reason])).toEqual([[dup, "reflink", "auto: btrfs clones files (each UI keeps a real file; the space is shared)"]]);
    const journal = join(mkdtempSync(join(mnt, "journals-")), "journal.jsonl");
    const result = await applyDedupe(plan, { journal });
    expect(result.results.map((r) => [r.outcome, r.link, r.backup])).toEqual([["linked", "reflink", "hardlink"]]);
    const d = lstatSync(dup);
    expect(d.isFile() && d.ino !== statSync(master).ino).toBe(true);
    expect(d.mtimeMs).toBe(T0);
    expect(d.mode & 0o777).toBe(0o644);
    expect(sha256(readFileSync(dup))).toBe(sha256(tree.sdxl));
    expect(exclusiveBytes(dup)).toBe(0);
    expect(contentByPath(tree.base)).toEqual(before);
    // A clone is its own file: undo has nothing to put back, and every path still shows its bytes.
    expect((await undoDedupe(journal)).map((u) => u.outcome)).toEqual(["nothing-to-do"]);
    expect(contentByPath(tree.base)).toEqual(before);
  });

  it("link --link auto makes a reflink and says why; --link reflink finds it there next time", async () => {
    const tree = buildUiTree(mkdtempSync(join(mnt, "link-")));
    const model = join(tree.a1111, "models/Stable-diffusion/unique.safetensors");
    const into = join(tree.comfy, "models/checkpoints");
    const [r] = await linkModel(model, [into], { link: "auto" });
    expect(r).toMatchObject({ outcome: "linked", link: "reflink", reason: "auto: the file system clones (each UI keeps a real file; the space is shared)" });
    const target = join(into, "unique.safetensors");
    expect(lstatSync(target).ino).not.toBe(lstatSync(model).ino);
    expect(sha256(readFileSync(target))).toBe(sha256(readFileSync(model)));
    expect(exclusiveBytes(target)).toBe(0);
    expect(await linkModel(model, [into], { link: "reflink" })).toEqual([{ path: target, outcome: "already-there", link: "reflink", sidecars: [] }]);
  });
});
