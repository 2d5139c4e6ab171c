import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";

/** Real torch checkpoints written by tools/fixtures/torch_checkpoints.py. */
export const TORCH_FIXTURES = join(import.meta.dirname, "..", "..", "safe-pickle", "test", "fixtures");

/**
 * A temp folder for the calling test file, created before its tests and removed after them,
 * with `stage` copying a torch fixture into it (optionally under another name).
 */
export function useTorchFixtureDir(prefix: string): { dir(): string; stage(name: string, as?: string): string } {
  let dir = "";
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir: () => dir,
    stage(name, as = name) {
      const path = join(dir, as);
      copyFileSync(join(TORCH_FIXTURES, name), path);
      return path;
    },
  };
}
