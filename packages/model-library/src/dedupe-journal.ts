import { constants } from "node:fs";
import { mkdir, open, readdir, readFile, stat, type FileHandle } from "node:fs/promises";
import { dirname, join } from "node:path";
import { resolveCachePath } from "@stmerge/cache";
import { LibraryError } from "./library-error.js";
import type { LinkKind } from "./plan-dedupe.js";

/**
 * Version of the journal's line format. 2: a replacement keeps a hard-link backup and makes the
 * link under a staging name (`staging`), so its `temp` may share the duplicate's inode; a reader
 * of version 1 would not know that, so it must refuse these journals. Version 1 lines are read.
 */
export const JOURNAL_VERSION = 2;
const READABLE_VERSIONS: ReadonlySet<unknown> = new Set([1, 2]);

/** What a replacement needs to be finished, rolled back or undone; written before its first step. */
export interface JournalIntent {
  readonly op: "intent";
  readonly i: number;
  readonly duplicate: string;
  readonly master: string;
  /**
   * The backup of the duplicate beside it: a hard link to it (step `backup`), or, where hard links
   * are refused, the duplicate itself renamed there (step `rename`).
   */
  readonly temp: string;
  /** Where the new link is made and checked before it is renamed over the duplicate (absent in version 1). */
  readonly staging?: string;
  readonly link: LinkKind;
  readonly sha256: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** Permission bits of the duplicate, restored by undo. */
  readonly mode: number;
}

export type JournalRecord =
  | { readonly op: "start"; readonly roots: readonly string[]; readonly actions: number; readonly pid: number }
  | JournalIntent
  | { readonly op: "step"; readonly i: number; readonly step: "backup" | "rename" | "link" | "replace" | "remove-backup" | "remove-temp" | "rollback"; readonly link?: LinkKind }
  | { readonly op: "done"; readonly i: number; readonly link: LinkKind }
  | { readonly op: "failed"; readonly i: number; readonly reason: string }
  | { readonly op: "end" }
  | { readonly op: "repaired"; readonly i: number; readonly outcome: "finished" | "rolled-back" | "nothing-to-do" }
  | { readonly op: "restore"; readonly i: number }
  | { readonly op: "undone"; readonly i: number; readonly outcome: string }
  | { readonly op: "closed"; readonly by: "undo" | "repair" };

/**
 * Where journals live unless the user names one: `$STMERGE_LIBRARY_JOURNALS`, else
 * `library-journals/` beside the metadata cache (`~/.model_merger/library-journals/`).
 */
export function defaultJournalDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.STMERGE_LIBRARY_JOURNALS || join(dirname(resolveCachePath(undefined, env)), "library-journals");
}

/** A new journal's name: `dedupe-<UTC time>-<pid>.jsonl`, sorting by time. */
export function newJournalPath(dir: string, now = new Date()): string {
  return join(dir, `dedupe-${now.toISOString().replace(/[:.]/g, "-")}-${process.pid}.jsonl`);
}

/** An append-only JSON-lines journal; every record is on disk (fsync) before `append` resolves. */
export class DedupeJournal {
  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
  ) {}

  static async open(path: string): Promise<DedupeJournal> {
    try {
      await mkdir(dirname(path), { recursive: true });
      const handle = await open(path, constants.O_CREAT | constants.O_APPEND | constants.O_WRONLY, 0o644);
      return new DedupeJournal(path, handle);
    } catch (error) {
      throw new LibraryError("LIBRARY_JOURNAL_UNWRITABLE", `${path}: cannot write the journal (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: path, cause: error });
    }
  }

  async append(record: JournalRecord): Promise<void> {
    await this.handle.write(`${JSON.stringify({ v: JOURNAL_VERSION, t: new Date().toISOString(), ...record })}\n`);
    await this.handle.sync();
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Reads a journal; a torn last line (a crash while appending) is ignored, any other bad line is an error. */
export async function readJournal(path: string): Promise<JournalRecord[]> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw new LibraryError("LIBRARY_JOURNAL_NOT_FOUND", `${path}: cannot read the journal (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`, { file: path, cause: error });
  }
  const lines = text.split("\n");
  const records: JournalRecord[] = [];
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.trim() === "") continue;
    try {
      const parsed = JSON.parse(line) as { v?: unknown; op?: unknown };
      if (!READABLE_VERSIONS.has(parsed.v) || typeof parsed.op !== "string") throw new Error("not a journal record");
      records.push(parsed as JournalRecord);
    } catch (error) {
      if (n === lines.length - 1) break;
      throw new LibraryError("LIBRARY_JOURNAL_DAMAGED", `${path}: line ${n + 1} is not a journal record (${(error as Error).message})`, { file: path });
    }
  }
  return records;
}

/** Journals in a folder, newest first. */
export async function listJournals(dir: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const paths = names.filter((n) => /^dedupe-.*\.jsonl$/.test(n)).map((n) => join(dir, n));
  const withTime = await Promise.all(paths.map(async (p) => ({ p, t: (await stat(p)).mtimeMs })));
  return withTime.sort((a, b) => b.t - a.t || (a.p < b.p ? 1 : -1)).map((x) => x.p);
}
