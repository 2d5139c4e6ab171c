import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, copyFile, link as hardLink, lstat, realpath, rename, symlink, unlink, utimes } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import type { CacheRecorder, ModelCache } from "@stmerge/cache";
import { DedupeJournal } from "./dedupe-journal.js";
import { LibraryError } from "./library-error.js";
import { linkShowsMasterBytes, sha256Of, withCacheRecorder } from "./link-checks.js";
import type { DedupeAction, DedupePlan, LinkKind } from "./plan-dedupe.js";
import { isInside } from "./scan-library.js";

export interface ApplyDedupeOptions {
  /** The journal file to write (see `defaultJournalDir` / `newJournalPath`). */
  journal: string;
  /** Used for the SHA-256 re-check just before each replacement. */
  cache?: ModelCache;
  /** Called after every journal record and every file-system change, numbered from 1 (tests inject crashes here). */
  onStep?: (step: number, what: string) => void;
  /** Called when an action is finished, skipped or failed. */
  onAction?: (result: ActionResult, index: number, total: number) => void;
  /** Stops between replacements (never inside one). */
  signal?: AbortSignal;
  /**
   * How the duplicate is kept while its link is made. `hardlink` (default): a hard link to it beside
   * it, so its path never goes missing; where hard links are refused, `rename` is used instead and
   * the result says so. `rename`: always rename it aside (the path is absent until the link is made).
   */
  backup?: "hardlink" | "rename";
}

export interface ActionResult {
  readonly action: DedupeAction;
  readonly outcome: "linked" | "skipped" | "failed";
  /** The link made (auto may fall back from the planned one). */
  readonly link?: LinkKind;
  /** How the duplicate was kept meanwhile: a hard-link backup (its path never missing) or a rename. */
  readonly backup?: "hardlink" | "rename";
  readonly reason?: string;
}

export interface ApplyDedupeResult {
  readonly journal: string;
  readonly results: readonly ActionResult[];
  readonly linked: number;
  readonly skipped: number;
  readonly failed: number;
}

const MTIME_TOLERANCE_MS = 1;
const CLONE_UNSUPPORTED = new Set(["ENOTSUP", "EOPNOTSUPP", "EXDEV", "ENOSYS", "EINVAL", "ENOTTY"]);
const HARDLINK_UNSUPPORTED = new Set(["EPERM", "ENOTSUP", "EOPNOTSUPP", "EMLINK", "EXDEV"]);

function codeOf(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/** Makes `path` show the master's bytes by a link of this kind (`path` must not exist). */
export async function createLink(kind: LinkKind, master: string, path: string, original: { mode: number; mtimeMs: number }): Promise<void> {
  if (kind === "symlink") await symlink(relative(dirname(path), master), path, "file");
  else if (kind === "hardlink") await hardLink(master, path);
  else {
    await copyFile(master, path, constants.COPYFILE_FICLONE_FORCE | constants.COPYFILE_EXCL);
    await chmod(path, original.mode & 0o7777);
    await utimes(path, new Date(), new Date(original.mtimeMs));
  }
}

/** Why an action must not run now (the file changed, left the roots, or the master is gone), or undefined. */
async function recheck(action: DedupeAction, roots: readonly string[], cache: CacheRecorder | undefined, signal: AbortSignal | undefined): Promise<{ skip?: string; mode: number }> {
  let d, m;
  try {
    [d, m] = await Promise.all([lstat(action.duplicate), lstat(action.master)]);
  } catch (error) {
    return { skip: `${codeOf(error) === "ENOENT" ? "a file is gone" : codeOf(error)} since the plan`, mode: 0 };
  }
  if (!d.isFile() || d.dev !== action.dev || d.ino !== action.ino) return { skip: "no longer the same file as planned", mode: d.mode };
  if (d.size !== action.size || Math.abs(d.mtimeMs - action.mtimeMs) >= MTIME_TOLERANCE_MS) return { skip: "changed since the plan (size or mtime)", mode: d.mode };
  if (!m.isFile() || m.size !== action.size) return { skip: "the master changed since the plan", mode: d.mode };
  const [realDir, realMaster] = await Promise.all([realpath(dirname(action.duplicate)), realpath(action.master)]);
  if (!roots.some((r) => isInside(realDir, r)) || !roots.some((r) => isInside(realMaster, r))) return { skip: "a link now leads out of the roots", mode: d.mode };
  const [dupSha, masterSha] = [(await sha256Of(action.duplicate, cache, signal)).sha256, (await sha256Of(action.master, cache, signal)).sha256];
  if (dupSha !== action.sha256 || masterSha !== action.sha256) return { skip: "content no longer identical to the master", mode: d.mode };
  return { mode: d.mode };
}

/**
 * Replaces every planned duplicate by its link, crash-safely: re-check size, mtime and SHA-256
 * just before; journal (fsynced) before each step; keep a hard-link backup of the duplicate
 * beside it; make the link under a staging name beside it; check it shows the master's bytes
 * (kind, size, SHA-256 read through it); rename it over the duplicate (atomic); remove the
 * backup. The duplicate's path shows its bytes at every moment. Where hard links are refused,
 * the duplicate is renamed aside instead (the path is briefly absent; the result says so). A
 * failed step puts the duplicate back. An interruption at any point is repaired by
 * `repairJournal` (a re-run) or reverted by `undoDedupe`. The master is never touched.
 */
export async function applyDedupe(plan: DedupePlan, options: ApplyDedupeOptions): Promise<ApplyDedupeResult> {
  const actions = plan.groups.flatMap((g) => g.actions);
  const journal = await DedupeJournal.open(options.journal);
  let stepNo = 0;
  const step = (what: string) => options.onStep?.(++stepNo, what);
  const record = async (r: Parameters<DedupeJournal["append"]>[0]) => {
    await journal.append(r);
    step(`journal ${r.op}`);
  };
  const results: ActionResult[] = [];
  // Re-check hashes go into the cache in batches (one locked write per batch), kept on interrupt.
  let recorder: CacheRecorder | undefined;
  try {
    await withCacheRecorder(options.cache, async (opened) => {
      recorder = opened;
      await record({ op: "start", roots: plan.roots, actions: actions.length, pid: process.pid });
      for (let i = 0; i < actions.length; i++) {
        options.signal?.throwIfAborted();
        const action = actions[i]!;
        const result = await applyOne(action, i);
        results.push(result);
        options.onAction?.(result, i, actions.length);
      }
      await record({ op: "end" });
    });
  } finally {
    await journal.close();
  }
  return {
    journal: options.journal,
    results,
    linked: results.filter((r) => r.outcome === "linked").length,
    skipped: results.filter((r) => r.outcome === "skipped").length,
    failed: results.filter((r) => r.outcome === "failed").length,
  };

  async function applyOne(action: DedupeAction, i: number): Promise<ActionResult> {
    const checked = await recheck(action, plan.roots, recorder, options.signal);
    if (checked.skip) return { action, outcome: "skipped", reason: checked.skip };
    const dir = dirname(action.duplicate);
    const name = basename(action.duplicate);
    const temp = join(dir, `.${name}.stmerge-dedupe-${randomBytes(4).toString("hex")}.tmp`);
    const staging = join(dir, `.${name}.stmerge-link-${randomBytes(4).toString("hex")}.tmp`);
    await record({ op: "intent", i, duplicate: action.duplicate, master: action.master, temp, staging, link: action.link, sha256: action.sha256, size: action.size, mtimeMs: action.mtimeMs, mode: checked.mode });
    const kinds: LinkKind[] = action.reason.startsWith("auto") ? (["reflink", "hardlink", "symlink"] as LinkKind[]).slice(["reflink", "hardlink", "symlink"].indexOf(action.link)) : [action.link];
    if (options.backup !== "rename") {
      await record({ op: "step", i, step: "backup" });
      let refused: string | undefined;
      try {
        await hardLink(action.duplicate, temp);
      } catch (error) {
        refused = codeOf(error);
      }
      // The file system (or the folder) refuses hard links: rename the duplicate aside instead.
      if (refused) return replaceInPlace(action, i, kinds, temp, checked.mode, `no hard-link backup (${refused}), so the duplicate was renamed aside and its path was absent until the link took its place`);
      step("backup");
      return replaceByRename(action, i, kinds, temp, staging, checked.mode);
    }
    return replaceInPlace(action, i, kinds, temp, checked.mode);
  }

  /**
   * The duplicate's path always shows a file: with a hard-link backup `temp` beside it, the link
   * is made under `staging`, checked (kind, size, SHA-256 read through it), then renamed over the
   * duplicate (an atomic replace); the backup is removed last.
   */
  async function replaceByRename(action: DedupeAction, i: number, kinds: readonly LinkKind[], temp: string, staging: string, mode: number): Promise<ActionResult> {
    const notes: string[] = [];
    for (const kind of kinds) {
      if (kind === "hardlink" && action.reason.includes("another file system")) continue;
      await record({ op: "step", i, step: "link", link: kind });
      try {
        await createLink(kind, action.master, staging, { mode, mtimeMs: action.mtimeMs });
      } catch (error) {
        const code = codeOf(error);
        await unlink(staging).catch(() => undefined);
        notes.push(`${kind} failed (${code})`);
        const unsupported = kind === "reflink" ? CLONE_UNSUPPORTED.has(code) : kind === "hardlink" ? HARDLINK_UNSUPPORTED.has(code) : false;
        if (unsupported && kinds.indexOf(kind) < kinds.length - 1) continue;
        break;
      }
      step("link");
      if (!(await linkShowsMasterBytes(staging, action.master, kind, action, options.signal))) {
        await unlink(staging).catch(() => undefined);
        notes.push(`the ${kind} did not resolve to the master's bytes`);
        break;
      }
      // The path must still be the planned file (its backup's inode) before the link replaces it.
      const [now, backup] = await Promise.all([lstat(action.duplicate).catch(() => undefined), lstat(temp)]);
      if (!now || now.dev !== backup.dev || now.ino !== backup.ino) {
        await unlink(staging).catch(() => undefined);
        notes.push("the file changed during the replacement");
        break;
      }
      await record({ op: "step", i, step: "replace" });
      await rename(staging, action.duplicate);
      step("replace");
      await record({ op: "step", i, step: "remove-backup" });
      await unlink(temp);
      step("remove-backup");
      await record({ op: "done", i, link: kind });
      return { action, outcome: "linked", link: kind, backup: "hardlink", ...(notes.length ? { reason: `auto: ${notes.join(", ")}; used ${kind}` } : {}) };
    }
    // Every kind failed: the duplicate never left its path; drop the staging link and the backup.
    await record({ op: "step", i, step: "rollback" });
    await unlink(staging).catch(() => undefined);
    await restoreFromBackup(action.duplicate, temp);
    step("rollback");
    return failedAll(action, i, notes);
  }

  /**
   * The fallback where hard links are refused (and what version 1 did): rename the duplicate to
   * `temp`, make the link at its path, check it, remove the temp. Between the rename and the link
   * the path is absent; the journal lets undo or a re-run put it back.
   */
  async function replaceInPlace(action: DedupeAction, i: number, kinds: readonly LinkKind[], temp: string, mode: number, backupNote?: string): Promise<ActionResult> {
    await record({ op: "step", i, step: "rename" });
    try {
      await rename(action.duplicate, temp);
    } catch (error) {
      const reason = `cannot rename ${action.duplicate} (${codeOf(error)})`;
      await record({ op: "failed", i, reason });
      return { action, outcome: "failed", reason };
    }
    step("rename");
    const notes: string[] = [];
    for (const kind of kinds) {
      if (kind === "hardlink" && action.reason.includes("another file system")) continue;
      await record({ op: "step", i, step: "link", link: kind });
      try {
        await createLink(kind, action.master, action.duplicate, { mode, mtimeMs: action.mtimeMs });
      } catch (error) {
        const code = codeOf(error);
        if (code === "EEXIST") {
          throw new LibraryError("LIBRARY_PATH_TAKEN", `${action.duplicate}: another file appeared there during the replacement; the original is kept as ${temp}`, { file: action.duplicate });
        }
        await unlink(action.duplicate).catch(() => undefined);
        notes.push(`${kind} failed (${code})`);
        const unsupported = kind === "reflink" ? CLONE_UNSUPPORTED.has(code) : kind === "hardlink" ? HARDLINK_UNSUPPORTED.has(code) : false;
        if (unsupported && kinds.indexOf(kind) < kinds.length - 1) continue;
        break;
      }
      step("link");
      if (!(await linkShowsMasterBytes(action.duplicate, action.master, kind, action, options.signal))) {
        await unlink(action.duplicate).catch(() => undefined);
        notes.push(`the ${kind} did not resolve to the master's bytes`);
        break;
      }
      await record({ op: "step", i, step: "remove-temp" });
      await unlink(temp);
      step("remove-temp");
      await record({ op: "done", i, link: kind });
      const why = [...(notes.length ? [`auto: ${notes.join(", ")}; used ${kind}`] : []), ...(backupNote ? [backupNote] : [])];
      return { action, outcome: "linked", link: kind, backup: "rename", ...(why.length ? { reason: why.join("; ") } : {}) };
    }
    // Every kind failed: put the duplicate back where it was.
    await record({ op: "step", i, step: "rollback" });
    await rename(temp, action.duplicate);
    step("rollback");
    return failedAll(action, i, notes);
  }

  async function failedAll(action: DedupeAction, i: number, notes: readonly string[]): Promise<ActionResult> {
    const reason = notes.join(", ") || "no link kind worked";
    await record({ op: "failed", i, reason });
    if (action.link === "hardlink" && notes.some((n) => n.includes("EXDEV"))) {
      throw new LibraryError("LIBRARY_CROSS_DEVICE", `${action.duplicate}: a hard link cannot reach ${action.master} on another file system; use --link symlink`, { file: action.duplicate });
    }
    return { action, outcome: "failed", reason };
  }
}

/**
 * Puts a replacement's backup back: where the path still is the backup's file (same inode) the
 * backup link is just removed; otherwise the backup is renamed over whatever is at the path
 * (an atomic replace, so the path never goes missing).
 */
export async function restoreFromBackup(path: string, backup: string): Promise<"removed-backup" | "renamed-back"> {
  const [now, kept] = await Promise.all([lstat(path).catch(() => undefined), lstat(backup)]);
  if (now && now.dev === kept.dev && now.ino === kept.ino) {
    await unlink(backup);
    return "removed-backup";
  }
  await rename(backup, path);
  return "renamed-back";
}
