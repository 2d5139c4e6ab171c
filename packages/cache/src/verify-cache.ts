import { resolve, sep } from "node:path";
import { collectModelFiles } from "./collect-model-files.js";
import { lookupIn, matches, statFile } from "./cache-lookup.js";
import type { CacheStore } from "./cache-store.js";

export interface CacheInfo {
  readonly location: string;
  readonly entries: number;
  readonly paths: number;
  readonly sizeBytes: number;
  /** Indexed paths whose file changed since it was hashed. */
  readonly stale: number;
  /** Indexed paths whose file is gone. */
  readonly missing: number;
  readonly withCivitai: number;
}

export interface CacheVerifyReport {
  readonly ok: string[];
  readonly stale: string[];
  readonly missing: string[];
  /** Model files in the folder that the cache does not know (only with a folder). */
  readonly uncached: string[];
  readonly prunedPaths: number;
  readonly prunedEntries: number;
}

function isUnder(path: string, folder: string): boolean {
  return path === folder || path.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}


/** Entry and path counts, size on disk, and how many indexed files changed or vanished. */
export async function cacheInfo(store: CacheStore): Promise<CacheInfo> {
  const doc = await store.read();
  let stale = 0;
  let missing = 0;
  await Promise.all(
    Object.entries(doc.paths).map(async ([p, r]) => {
      const info = await statFile(p);
      if (!info) missing++;
      else if (!matches(r, info.size, info.mtimeMs)) stale++;
    }),
  );
  const entries = Object.values(doc.models);
  return {
    location: store.location,
    entries: entries.length,
    paths: Object.keys(doc.paths).length,
    sizeBytes: await store.sizeOnDisk(),
    stale,
    missing,
    withCivitai: entries.filter((e) => e.civitai && !e.civitai.not_found && e.civitai.version_id !== null).length,
  };
}

/**
 * Checks indexed paths (all, or those under `folder`) against the files on disk. With `prune`,
 * records of missing or changed files are dropped, and entries left with no path at all.
 */
export async function verifyCache(store: CacheStore, options: { folder?: string; prune?: boolean; recurse?: boolean } = {}): Promise<CacheVerifyReport> {
  const doc = await store.read();
  const folder = options.folder ? resolve(options.folder) : undefined;
  const ok: string[] = [];
  const stale: string[] = [];
  const missing: string[] = [];
  const records = Object.entries(doc.paths).filter(([p]) => !folder || isUnder(p, folder));
  await Promise.all(
    records.map(async ([p, r]) => {
      const info = await statFile(p);
      if (!info) missing.push(p);
      else if (!matches(r, info.size, info.mtimeMs)) stale.push(p);
      else ok.push(p);
    }),
  );
  let uncached: string[] = [];
  if (folder) {
    const files = await collectModelFiles([folder], { recurse: options.recurse ?? true });
    const known = new Set(records.map(([p]) => p));
    for (const f of files) {
      if (known.has(f)) continue;
      const info = await statFile(f);
      if (info && lookupIn(doc, f, info.size, info.mtimeMs).status === "uncached") uncached.push(f);
    }
  }
  let prunedPaths = 0;
  let prunedEntries = 0;
  if (options.prune && (stale.length > 0 || missing.length > 0)) {
    const dropped = new Set([...stale, ...missing]);
    const affected = new Set([...dropped].map((p) => doc.paths[p]!.sha256));
    prunedPaths = await store.removePaths([...dropped]);
    const after = await store.read();
    const stillIndexed = new Set(Object.values(after.paths).map((r) => r.sha256));
    const orphans = [...affected].filter((h) => !stillIndexed.has(h));
    if (orphans.length > 0) prunedEntries = await store.removeEntries(orphans);
  }
  const sort = (a: string[]) => a.sort();
  return { ok: sort(ok), stale: sort(stale), missing: sort(missing), uncached: sort(uncached), prunedPaths, prunedEntries };
}
