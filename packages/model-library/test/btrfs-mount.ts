import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface BtrfsMount {
  /** The mount point, or undefined where mounting is not permitted (not root, no mkfs.btrfs, no loop devices). */
  readonly mnt: string | undefined;
  /** Unmounts and removes the image; call from afterAll. */
  readonly cleanup: () => void;
}

/**
 * A 128 MiB btrfs image loop-mounted in a temp folder, so reflinks can be tested where they
 * really work. Synchronous, so `it.skipIf` can use the outcome at collection time.
 */
export function mountBtrfs(): BtrfsMount {
  const work = mkdtempSync(join(tmpdir(), "stmerge-library-btrfs-"));
  const mnt = join(work, "mnt");
  let mounted = false;
  if (process.platform === "linux" && process.getuid?.() === 0) {
    try {
      const image = join(work, "btrfs.img");
      writeFileSync(image, "");
      truncateSync(image, 128 * 1024 * 1024);
      execFileSync("mkfs.btrfs", ["-q", image], { stdio: "ignore" });
      mkdirSync(mnt);
      execFileSync("mount", ["-o", "loop", image, mnt], { stdio: "ignore" });
      mounted = true;
    } catch {
      mounted = false;
    }
  }
  return {
    mnt: mounted ? mnt : undefined,
    cleanup: () => {
      if (mounted) execFileSync("umount", [mnt]);
      rmSync(work, { recursive: true, force: true });
    },
  };
}
