import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A new empty folder under the system temp folder; the test that makes it removes it. */
export function tempDir(prefix = "stmerge-merge-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
