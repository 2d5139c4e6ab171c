import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleEntry } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mountBtrfs } from "./btrfs-mount.js";
import { buildUiTree, contentByPath, snapshotTree } from "./library-tree.js";

// Every step of a dedupe (each journal record and each file change) is interrupted in turn by
// SIGKILL in a child process; then `undo` must give back the tree exactly as it was, and a
// re-run must end fully deduplicated, with every path showing its bytes at every point.
const PKG = join(import.meta.dirname, "..");
const scratch: string[] = [];
let child: string;

beforeAll(async () => {
  child = await bundleEntry(join(PKG, "test", "dedupe-child.ts"), { outDir: join(PKG, ".tmp"), name: "dedupe-child", external: ["@napi-rs/blake-hash"] });
}, 120_000);
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
  rmSync(child, { force: true });
});

// Reflink (a clone, copied block by block where the kill can land mid-clone) where a btrfs image can be mounted.
const btrfs = mountBtrfs();
afterAll(() => btrfs.cleanup());

function freshTreeIn(dir: string) {
  const base = mkdtempSync(join(dir, "stmerge-library-crash-"));
  scratch.push(base);
  const tree = buildUiTree(base);
  const journals = join(base, "journals");
  // Two roots: one replacement (the A1111 checkpoint → ComfyUI's copy), ten steps.
  return { tree, journals, roots: [tree.a1111, tree.comfy] };
}

function run(args: string[], crashAt = 0, backup: "hardlink" | "rename" = "hardlink") {
  const r = spawnSync(process.execPath, [child, ...args], { env: { ...process.env, STMERGE_TEST_CRASH_AFTER_STEP: String(crashAt), STMERGE_TEST_BACKUP: backup }, encoding: "utf8" });
  return { killed: r.signal === "SIGKILL", status: r.status, out: r.stdout, err: r.stderr };
}

/** The tree without the journals folder. */
function models(base: string): Record<string, string> {
  return Object.fromEntries(Object.entries(snapshotTree(base)).filter(([k]) => !k.startsWith("journals/")));
}

// With a hard-link backup (the default) the duplicate's path shows its bytes at every kill point;
// with the rename fallback (hard links refused) the bytes are at the temp name meanwhile.
for (const [link, backup, expectedSteps] of [["symlink", "hardlink", 12], ["hardlink", "hardlink", 12], ["symlink", "rename", 10], ["reflink", "hardlink", 12]] as const) {
  describe(`dedupe --link ${link} (backup by ${backup}) interrupted after every step`, () => {
    const on = link === "reflink" ? btrfs.mnt : tmpdir();
    const freshTree = () => freshTreeIn(on!);
    it.skipIf(on === undefined)(`undo restores the tree exactly; a re-run finishes the job; no byte is ever missing${link === "reflink" ? " (loop-mounted btrfs)" : ""}`, () => {
      const reference = freshTree();
      const original = models(reference.tree.base);
      const bytes = contentByPath(reference.tree.a1111);
      const duplicate = "models/Stable-diffusion/sdxl_base.safetensors";
      const full = run(["dedupe", reference.journals, link, ...reference.roots], 0, backup);
      expect(full.status, full.err).toBe(0);
      expect(JSON.parse(full.out)).toEqual({ linked: 1, failed: 0 });
      const deduped = models(reference.tree.base);
      // A clone shows the same bytes as the file it replaced (only its extents are shared).
      if (link !== "reflink") expect(deduped).not.toEqual(original);

      let steps = 0;
      for (let n = 1; ; n++) {
        const a = freshTree();
        const crashed = run(["dedupe", a.journals, link, ...a.roots], n, backup);
        if (!crashed.killed) {
          expect(crashed.status, crashed.err).toBe(0);
          break;
        }
        steps = n;
        // Interrupted: every model's bytes are still there (at its path or, mid-replacement, at its temp name).
        expect(new Set(Object.values(contentByPath(a.tree.a1111, true))), `after step ${n}`).toEqual(new Set(Object.values(bytes)));
        if (backup === "hardlink") {
          // The duplicate's own path exists and shows its bytes at every kill point.
          expect(existsSync(join(a.tree.a1111, duplicate)), `${duplicate} after step ${n}`).toBe(true);
          expect(contentByPath(a.tree.a1111)[duplicate], `${duplicate} after step ${n}`).toBe(bytes[duplicate]);
        }
        const undo = run(["undo", a.journals]);
        expect(undo.status, undo.err).toBe(0);
        expect(models(a.tree.base), `undo after step ${n}`).toEqual(original);
        expect(Object.keys(contentByPath(a.tree.base, true)).filter((k) => k.includes(".stmerge-")), `undo after step ${n}`).toEqual([]);

        const b = freshTree();
        expect(run(["dedupe", b.journals, link, ...b.roots], n, backup).killed).toBe(true);
        const rerun = run(["dedupe", b.journals, link, ...b.roots], 0, backup);
        expect(rerun.status, rerun.err).toBe(0);
        expect(models(b.tree.base), `re-run after step ${n}`).toEqual(deduped);
        expect(contentByPath(b.tree.a1111)).toEqual(bytes);
        expect(Object.keys(contentByPath(b.tree.base, true)).filter((k) => k.includes(".stmerge-")), `re-run after step ${n}`).toEqual([]);
      }
      // hardlink backup: start, intent, backup record, backup, link record, link (staging), replace record,
      // replace, remove-backup record, remove-backup, done, end.
      // rename: start, intent, rename record, rename, link record, link, remove-temp record, remove-temp, done, end.
      expect(steps).toBe(expectedSteps);
    }, 300_000);
  });
}
