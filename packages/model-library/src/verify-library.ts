import type { ModelCache } from "@stmerge/cache";
import type { ProgressCallback } from "@stmerge/core-tensors";
import { findDuplicates, type DuplicateGroup } from "./find-duplicates.js";
import { scanLibrary, type LinkProblem } from "./scan-library.js";

export interface LibraryVerifyReport {
  readonly roots: readonly string[];
  readonly brokenLinks: readonly LinkProblem[];
  readonly escapingLinks: readonly LinkProblem[];
  /** Duplicates that came back (or were never linked). */
  readonly duplicates: readonly DuplicateGroup[];
  readonly ok: boolean;
}

/** Broken links, links that escape the roots, and duplicate copies present now. */
export async function verifyLibrary(roots: readonly string[], options: { cache?: ModelCache; onProgress?: ProgressCallback; signal?: AbortSignal } = {}): Promise<LibraryVerifyReport> {
  const scan = await scanLibrary(roots, { sniff: "none", ...(options.signal ? { signal: options.signal } : {}) });
  const found = await findDuplicates(scan, options);
  return {
    roots: scan.roots,
    brokenLinks: scan.brokenLinks,
    escapingLinks: scan.escapingLinks,
    duplicates: found.groups,
    ok: scan.brokenLinks.length === 0 && scan.escapingLinks.length === 0 && found.groups.length === 0,
  };
}
