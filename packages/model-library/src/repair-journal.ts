import { constants } from "node:fs";
import { chmod, copyFile, lstat, open, rename, rm, stat, unlink, utimes } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { hashFile, type ModelCache } from "@stmerge/cache";
import { restoreFromBackup } from "./apply-dedupe.js";
import { DedupeJournal, listJournals, readJournal, type JournalIntent, type JournalRecord } from "./dedupe-journal.js";
import { LibraryError } from "./library-error.js";
import { linkResolvesToMaster, sha256Of, withCacheRecorder } from "./link-checks.js";

export interface JournalOutcome {
  readonly duplicate: string;
  readonly outcome: "finished" | "rolled-back" | "restored" | "nothing-to-do" | "missing" | "master-changed";
}

export interface JournalRunOptions {
  cache?: ModelCache;
  /** Called after every journal record and every file-system change (tests inject crashes here). */
  onStep?: (step: number, what: string) => void;
  signal?: AbortSignal;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw error;
  }
}

function intents(records: readonly JournalRecord[]): JournalIntent[] {
  return records.filter((r): r is JournalIntent => r.op === "intent");
}

/** Intents whose replacement never reached `done`, `failed` or a repair. */
function unfinished(records: readonly JournalRecord[]): JournalIntent[] {
  const settled = new Set(records.filter((r) => r.op === "done" || r.op === "failed" || r.op === "repaired").map((r) => (r as { i: number }).i));
  return intents(records).filter((r) => !settled.has(r.i));
}

/** Whether a journal's run is over: it ended, or was repaired or undone. */
export function journalIsClosed(records: readonly JournalRecord[]): boolean {
  return records.some((r) => r.op === "end" || r.op === "closed");
}

/** Whether the run that wrote a journal is still going (its process is alive on this machine). */
export function journalOwnerAlive(records: readonly JournalRecord[]): boolean {
  const start = records.find((r) => r.op === "start") as { pid?: number } | undefined;
  if (!start?.pid || start.pid === process.pid) return false;
  try {
    process.kill(start.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Finishes or rolls back the replacements an interrupted run left half done: a staging link is
 * removed; where the backup still exists, a link at the path that resolves to the master is kept
 * and the backup removed; a path that is still the backup's file keeps it and drops the backup;
 * anything else (a partial link, no file) gets the backup renamed over it. Every byte stays
 * present throughout. Then the journal is closed.
 */
export async function repairJournal(path: string, options: JournalRunOptions = {}): Promise<JournalOutcome[]> {
  const records = await readJournal(path);
  if (journalIsClosed(records)) return [];
  if (journalOwnerAlive(records)) throw new LibraryError("LIBRARY_JOURNAL_BUSY", `${path}: the dedupe that writes this journal is still running`, { file: path });
  const journal = await DedupeJournal.open(path);
  let stepNo = 0;
  const step = (what: string) => options.onStep?.(++stepNo, what);
  const out: JournalOutcome[] = [];
  try {
    for (const r of unfinished(records)) {
      options.signal?.throwIfAborted();
      let outcome: "finished" | "rolled-back" | "nothing-to-do" = "nothing-to-do";
      // A staging link is never the only copy of anything: it goes first.
      if (r.staging && (await exists(r.staging))) {
        await unlink(r.staging);
        step("remove-staging");
      }
      if (await exists(r.temp)) {
        const link = (records.filter((x) => x.op === "step" && x.i === r.i && x.step === "link").pop() as { link?: JournalIntent["link"] } | undefined)?.link ?? r.link;
        const [d, t] = await Promise.all([lstat(r.duplicate).catch(() => undefined), lstat(r.temp)]);
        if (d && !(d.dev === t.dev && d.ino === t.ino) && (await linkResolvesToMaster(r.duplicate, r.master, link, r.sha256))) {
          await unlink(r.temp);
          step("remove-temp");
          outcome = "finished";
        } else {
          // The path is still the backup's file (drop the backup), or a partial link or nothing (rename the backup over it).
          step(await restoreFromBackup(r.duplicate, r.temp));
          outcome = "rolled-back";
        }
      }
      await journal.append({ op: "repaired", i: r.i, outcome });
      step("journal repaired");
      out.push({ duplicate: r.duplicate, outcome });
    }
    await journal.append({ op: "closed", by: "repair" });
    step("journal closed");
  } finally {
    await journal.close();
  }
  return out;
}

/** Writes an independent copy of the master's bytes at `path` (temp beside it, fsync, checked, renamed over the link). */
async function restoreCopy(r: JournalIntent): Promise<void> {
  const temp = join(dirname(r.duplicate), `.${basename(r.duplicate)}.stmerge-restore.tmp`);
  await rm(temp, { force: true });
  try {
    // A clone where the file system can, else a plain copy.
    await copyFile(r.master, temp, constants.COPYFILE_FICLONE | constants.COPYFILE_EXCL);
    const handle = await open(temp, "r+");
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await chmod(temp, r.mode & 0o7777);
    await utimes(temp, new Date(), new Date(r.mtimeMs));
    const check = await hashFile(temp, { algorithms: ["sha256"] });
    if (check.hashes.sha256 !== r.sha256) throw new LibraryError("LIBRARY_RESTORE_MISMATCH", `${r.duplicate}: the restored copy does not match the original SHA-256`, { file: r.duplicate });
    await rename(temp, r.duplicate);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
}

/**
 * Restores the state before a dedupe from its journal, newest replacement first: a link is
 * replaced by an independent copy of the master's bytes (mode and mtime as they were); a
 * half-done replacement loses its staging link and gets its original back from the backup
 * (renamed over the path, or just dropped where the path still is that file). Safe to run again.
 */
export async function undoDedupe(path: string, options: JournalRunOptions = {}): Promise<JournalOutcome[]> {
  const records = await readJournal(path);
  if (journalOwnerAlive(records) && !journalIsClosed(records)) throw new LibraryError("LIBRARY_JOURNAL_BUSY", `${path}: the dedupe that writes this journal is still running`, { file: path });
  const failed = new Set(records.filter((x) => x.op === "failed").map((x) => (x as { i: number }).i));
  const journal = await DedupeJournal.open(path);
  let stepNo = 0;
  const step = (what: string) => options.onStep?.(++stepNo, what);
  const out: JournalOutcome[] = [];
  try {
    // Master hashes go into the cache in batches (one locked write per batch), kept on interrupt.
    await withCacheRecorder(options.cache, async (recorder) => {
      for (const r of intents(records).reverse()) {
        options.signal?.throwIfAborted();
        if (failed.has(r.i)) continue;
        await journal.append({ op: "restore", i: r.i });
        step("journal restore");
        let outcome: JournalOutcome["outcome"];
        if (r.staging && (await exists(r.staging))) {
          await unlink(r.staging);
          step("remove-staging");
        }
        if (await exists(r.temp)) {
          step(await restoreFromBackup(r.duplicate, r.temp));
          outcome = "restored";
        } else {
          const d = await lstat(r.duplicate).catch(() => undefined);
          const m = await stat(r.master).catch(() => undefined);
          if (!d) outcome = "missing";
          else if (d.isFile() && !(m && d.dev === m.dev && d.ino === m.ino)) outcome = "nothing-to-do";
          else if (!m) outcome = "missing";
          else if ((await sha256Of(r.master, recorder, options.signal)).sha256 !== r.sha256) outcome = "master-changed";
          else {
            await restoreCopy(r);
            step("restore-copy");
            outcome = "restored";
          }
        }
        await journal.append({ op: "undone", i: r.i, outcome });
        step("journal undone");
        out.push({ duplicate: r.duplicate, outcome });
      }
    });
    await journal.append({ op: "closed", by: "undo" });
    step("journal closed");
  } finally {
    await journal.close();
  }
  return out;
}

/**
 * Repairs every journal in `dir` left unfinished by an interrupted run whose process is gone
 * (what a re-run of `library dedupe` does before it scans). Returns what was repaired.
 */
export async function repairUnfinishedJournals(dir: string, options: JournalRunOptions = {}): Promise<{ journal: string; outcomes: JournalOutcome[] }[]> {
  const out: { journal: string; outcomes: JournalOutcome[] }[] = [];
  for (const journal of await listJournals(dir)) {
    const records = await readJournal(journal);
    if (journalIsClosed(records) || journalOwnerAlive(records)) continue;
    out.push({ journal, outcomes: await repairJournal(journal, options) });
  }
  return out;
}
