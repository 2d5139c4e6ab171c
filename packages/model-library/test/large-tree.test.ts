import { existsSync, mkdtempSync, rmSync, statfsSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeLargeTree } from "../bench/large-tree.mjs";
import { findDuplicates, scanLibrary } from "../src/index.js";

// Creating and removing 100,000 files takes ~50 s on a loaded ext4 disk and ~3 s in memory, and
// the scan does the same either way: the tree goes in /dev/shm when it has room (Docker's default
// 64 MiB does too: the files hold ~25 MB), else in the temp folder.
function treeParent(): string {
  if (!existsSync("/dev/shm")) return tmpdir();
  const fs = statfsSync("/dev/shm");
  return fs.bavail * fs.bsize >= 48 * 2 ** 20 && fs.ffree >= 150_000 ? "/dev/shm" : tmpdir();
}

let base: string;
let expected: ReturnType<typeof makeLargeTree>;
beforeAll(() => {
  base = mkdtempSync(join(treeParent(), "stmerge-library-100k-"));
  expected = makeLargeTree(base);
}, 300_000);
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("a 100,000-file tree", () => {
  it("is scanned whole, and only the files sharing a size are read", async () => {
    const scan = await scanLibrary([join(base, "a1111"), join(base, "comfy")], { sniff: "none" });
    expect(scan.files).toHaveLength(100_000);
    expect(expected.files).toBe(100_000);
    expect(scan.identities).toHaveLength(100_000);
    expect(scan.byKind.checkpoint.files + scan.byKind.lora.files + scan.byKind.vae.files + scan.byKind.upscaler.files + scan.byKind.controlnet.files).toBe(100_000);
    let opened = 0;
    const found = await findDuplicates(scan, { openForRead: (p) => (opened++, open(p, "r")) });
    expect(found.groups).toHaveLength(expected.groups);
    expect(found.wastedBytes).toBe(expected.wastedBytes);
    expect(opened).toBe(expected.sameSizeFiles);
    expect(found.groups.every((g) => g.identities.length === 2 && g.identities[0]!.path.includes("/a1111/") && g.identities[1]!.path.includes("/comfy/"))).toBe(true);
  }, 300_000);
});
