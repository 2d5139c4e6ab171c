import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import { chmod, copyFile, link as hardLink, lstat, realpath, rename, symlink, unlink, utimes } from "node:fs/promises";
import { basename, dirname, join, relative } from "node:path";
import type { ModelCache } from "@stmerge/cache";
import { DedupeJournal } from "./dedupe-journal.js";
import { LibraryError } from "./library-error.js";
import { linkResolvesToMaster, sha256Of } from "./link-checks.js";
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
}

export interface ActionResult {
  readonly action: DedupeAction;
  readonly outcome: "linked" | "skipped" | "failed";
  /** The link made (auto may fall back from the planned one). */
  readonly link?: LinkKind;
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
async function recheck(action: DedupeAction, roots: readonly string[], cache: ModelCache | undefined, signal: AbortSignal | undefined): Promise<{ skip?: string; mode: number }> {
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
 * just before; journal (fsynced) before each step; rename the duplicate to a temp name beside
 * it; create the link; check it resolves to the master's bytes; remove the temp. A failed step
 * puts the duplicate back. An interruption at any point is repaired by `repairJournal` (a
 * re-run) or reverted by `undoDedupe`. The master is never touched.
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
  try {
    await record({ op: "start", roots: plan.roots, actions: actions.length, pid: process.pid });
    for (let i = 0; i < actions.length; i++) {
      options.signal?.throwIfAborted();
      const action = actions[i]!;
      const result = await applyOne(action, i);
      results.push(result);
      options.onAction?.(result, i, actions.length);
    }
    await record({ op: "end" });
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
    const checked = await recheck(action, plan.roots, options.cache, options.signal);
    if (checked.skip) return { action, outcome: "skipped", reason: checked.skip };
    const temp = join(dirname(action.duplicate), `.${basename(action.duplicate)}.stmerge-dedupe-${randomBytes(4).toString("hex")}.tmp`);
    await record({ op: "intent", i, duplicate: action.duplicate, master: action.master, temp, link: action.link, sha256: action.sha256, size: action.size, mtimeMs: action.mtimeMs, mode: checked.mode });
    await record({ op: "step", i, step: "rename" });
    try {
      await rename(action.duplicate, temp);
    } catch (error) {
      const reason = `cannot rename ${action.duplicate} (${codeOf(error)})`;
      await record({ op: "failed", i, reason });
      return { action, outcome: "failed", reason };
    }
    step("rename");
    const kinds: LinkKind[] = action.reason.startsWith("auto") ? (["reflink", "hardlink", "symlink"] as LinkKind[]).slice(["reflink", "hardlink", "symlink"].indexOf(action.link)) : [action.link];
    const notes: string[] = [];
    for (const kind of kinds) {
      if (kind === "hardlink" && action.reason.includes("another file system")) continue;
      await record({ op: "step", i, step: "link", link: kind });
      try {
        await createLink(kind, action.master, action.duplicate, { mode: checked.mode, mtimeMs: action.mtimeMs });
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
      if (!(await linkResolvesToMaster(action.duplicate, action.master, kind, action.sha256))) {
        await unlink(action.duplicate).catch(() => undefined);
        notes.push(`the ${kind} did not resolve to the master's bytes`);
        break;
      }
      await record({ op: "step", i, step: "remove-temp" });
      await unlink(temp);
      step("remove-temp");
      await record({ op: "done", i, link: kind });
      return { action, outcome: "linked", link: kind, ...(notes.length ? { reason: `auto: ${notes.join(", ")}; used ${kind}` } : {}) };
    }
    // Every kind failed: put the duplicate back where it was.
    await record({ op: "step", i, step: "rollback" });
    await rename(temp, action.duplicate);
    step("rollback");
    const reason = notes.join(", ") || "no link kind worked";
    await record({ op: "failed", i, reason });
    if (action.link === "hardlink" && notes.some((n) => n.includes("EXDEV"))) {
      throw new LibraryError("LIBRARY_CROSS_DEVICE", `${action.duplicate}: a hard link cannot reach ${action.master} on another file system; use --link symlink`, { file: action.duplicate });
    }
    return { action, outcome: "failed", reason };
  }
}
