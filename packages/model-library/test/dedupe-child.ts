// A child process for the interruption tests: `dedupe <journal-dir> <link> <root...>` repairs
// unfinished journals (as a re-run does), then scans, plans and applies; `undo <journal-dir>`
// undoes the newest journal. With STMERGE_TEST_CRASH_AFTER_STEP=N it kills itself (SIGKILL, no
// clean-up of any kind) right after step N of the dedupe: a journal record or a file change.
// STMERGE_TEST_BACKUP=rename makes the dedupe rename duplicates aside (the fallback where hard
// links are refused) instead of keeping a hard-link backup.
import { applyDedupe, findDuplicates, listJournals, newJournalPath, planDedupe, repairUnfinishedJournals, scanLibrary, undoDedupe, type LinkMode } from "../src/index.js";

const [command, journalDir, link, ...roots] = process.argv.slice(2);
const crashAt = Number(process.env.STMERGE_TEST_CRASH_AFTER_STEP ?? 0);
const onStep = (n: number) => {
  if (n === crashAt) process.kill(process.pid, "SIGKILL");
};

if (command === "dedupe") {
  await repairUnfinishedJournals(journalDir!);
  const scan = await scanLibrary(roots);
  const found = await findDuplicates(scan);
  const plan = await planDedupe(scan.roots, found.groups, { link: link as LinkMode });
  const backup = process.env.STMERGE_TEST_BACKUP === "rename" ? "rename" : "hardlink";
  const result = await applyDedupe(plan, { journal: newJournalPath(journalDir!), onStep, backup });
  process.stdout.write(JSON.stringify({ linked: result.linked, failed: result.failed }));
} else if (command === "undo") {
  const [newest] = await listJournals(journalDir!);
  process.stdout.write(JSON.stringify(newest ? await undoDedupe(newest) : []));
}
