import { open, type FileHandle } from "node:fs/promises";
import { matches, type ModelCache } from "@stmerge/cache";
import type { ProgressCallback } from "@stmerge/core-tensors";
import { LibraryError } from "./library-error.js";
import { sha256Of, withCacheRecorder } from "./link-checks.js";
import { mapLimit } from "./map-limit.js";
import { partialHash } from "./partial-hash.js";
import type { LibraryIdentity, LibraryScan } from "./scan-library.js";

/** Stored files (distinct device + inode) with identical bytes. */
export interface DuplicateGroup {
  readonly sha256: string;
  readonly size: number;
  /** Two or more, in path order. */
  readonly identities: readonly LibraryIdentity[];
  /** `size × (identities − 1)`: what keeping one copy saves. Links never count. */
  readonly wastedBytes: number;
}

export interface DuplicateSearchStats {
  /** Stored files considered (non-empty, one per device + inode). */
  readonly files: number;
  /** Files sharing their size with another (the only ones whose content is read). */
  readonly sameSize: number;
  readonly partialHashed: number;
  readonly fullHashed: number;
  /** Full SHA-256 values the metadata cache answered (file unchanged since hashed). */
  readonly fromCache: number;
  readonly bytesRead: number;
}

export interface DuplicateSearch {
  readonly groups: readonly DuplicateGroup[];
  readonly wastedBytes: number;
  readonly stats: DuplicateSearchStats;
}

export interface FindDuplicatesOptions {
  /** The metadata cache: full SHA-256 values are taken from it when the file is unchanged and recorded into it. */
  cache?: ModelCache;
  /** Opens a file for the partial reads (tests count reads through it); default `fs.open(path, "r")`. */
  openForRead?: (path: string) => Promise<FileHandle>;
  onProgress?: ProgressCallback;
  signal?: AbortSignal;
  /** Files read side by side for partial hashes; default 8. */
  concurrency?: number;
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): T[][] {
  const map = new Map<string, T[]>();
  for (const item of items) {
    const k = key(item);
    const list = map.get(k);
    if (list) list.push(item);
    else map.set(k, [item]);
  }
  return [...map.values()];
}

/**
 * Duplicate stored files, reading as little as possible: files are grouped by size (a size held
 * by one file reads nothing); the metadata cache answers for unchanged files; the rest get a
 * partial hash of blocks from the data region and the tail; only files still paired get a full
 * SHA-256. Zero-length files and files still being downloaded are never duplicates.
 */
export async function findDuplicates(scan: Pick<LibraryScan, "identities">, options: FindDuplicatesOptions = {}): Promise<DuplicateSearch> {
  const openForRead = options.openForRead ?? ((p: string) => open(p, "r"));
  const candidates = scan.identities.filter((i) => i.size > 0);
  const sameSize = groupBy(candidates, (i) => String(i.size)).filter((g) => g.length > 1);
  let partialHashed = 0;
  let fullHashed = 0;
  let fromCache = 0;
  let bytesRead = 0;

  const doc = options.cache ? await options.cache.store.read() : undefined;
  const known = new Map<string, string>();
  if (doc) {
    for (const group of sameSize) {
      for (const id of group) {
        // Only a record of this very path counts (see sha256Of).
        const record = doc.paths[id.path];
        if (record && matches(record, id.size, id.mtimeMs)) known.set(id.key, record.sha256);
      }
    }
  }

  const sha = new Map<string, string>();
  const needFull: LibraryIdentity[] = [];
  const toPartial: LibraryIdentity[][] = [];
  for (const group of sameSize) {
    if (!group.every((id) => known.has(id.key))) toPartial.push(group);
    else
      for (const id of group) {
        sha.set(id.key, known.get(id.key)!);
        fromCache++;
      }
  }

  const partialTotal = toPartial.reduce((n, g) => n + g.length, 0);
  const partial = new Map<string, string>();
  await mapLimit(
    toPartial.flat(),
    options.concurrency ?? 8,
    async (id) => {
      let handle: FileHandle;
      try {
        handle = await openForRead(id.path);
      } catch (error) {
        throw new LibraryError("LIBRARY_FILE_UNREADABLE", `${id.path}: cannot read (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: id.path, cause: error });
      }
      try {
        const p = await partialHash(handle, id.size, id.path);
        bytesRead += p.bytesRead;
        partialHashed++;
        partial.set(id.key, p.hash);
        if (p.whole) sha.set(id.key, p.hash);
        options.onProgress?.({ phase: "dedupe-sample", bytesDone: partialHashed, bytesTotal: partialTotal, detail: id.path });
      } finally {
        await handle.close().catch(() => undefined);
      }
    },
    options.signal,
  );
  for (const group of toPartial) {
    for (const same of groupBy(group, (id) => `${partial.get(id.key)}`)) {
      if (same.length < 2) continue;
      for (const id of same) {
        if (sha.has(id.key)) continue;
        const k = known.get(id.key);
        if (k) {
          sha.set(id.key, k);
          fromCache++;
        } else needFull.push(id);
      }
    }
  }

  const fullTotal = needFull.reduce((n, id) => n + id.size, 0);
  let fullDone = 0;
  // The full hashes go into the cache in batches (one locked write per batch), kept on interrupt.
  await withCacheRecorder(needFull.length > 0 ? options.cache : undefined, async (recorder) => {
    for (const id of needFull) {
      options.signal?.throwIfAborted();
      const progress: ProgressCallback | undefined = options.onProgress
        ? (e) => options.onProgress!({ phase: "dedupe-hash", bytesDone: fullDone + e.bytesDone, bytesTotal: fullTotal, detail: id.path })
        : undefined;
      const result = await sha256Of(id.path, recorder, options.signal, progress);
      if (result.fromCache) fromCache++;
      bytesRead += result.bytesRead;
      sha.set(id.key, result.sha256);
      fullHashed++;
      fullDone += id.size;
    }
  });

  const groups: DuplicateGroup[] = [];
  for (const group of sameSize) {
    const hashed = group.filter((id) => sha.has(id.key));
    for (const same of groupBy(hashed, (id) => sha.get(id.key)!)) {
      if (same.length < 2) continue;
      const sorted = [...same].sort((a, b) => (a.path < b.path ? -1 : 1));
      groups.push({ sha256: sha.get(sorted[0]!.key)!, size: sorted[0]!.size, identities: sorted, wastedBytes: sorted[0]!.size * (sorted.length - 1) });
    }
  }
  groups.sort((a, b) => b.wastedBytes - a.wastedBytes || (a.identities[0]!.path < b.identities[0]!.path ? -1 : 1));
  return {
    groups,
    wastedBytes: groups.reduce((n, g) => n + g.wastedBytes, 0),
    stats: { files: candidates.length, sameSize: sameSize.reduce((n, g) => n + g.length, 0), partialHashed, fullHashed, fromCache, bytesRead },
  };
}
