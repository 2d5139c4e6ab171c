import { dirname, resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { writeFileAtomic } from "@stmerge/core-tensors";
import {
  applyDedupe,
  assertA1111Root,
  comfyExtraModelPathsYaml,
  defaultJournalDir,
  findDuplicates,
  linkModel,
  listJournals,
  newJournalPath,
  planDedupe,
  readJournal,
  repairUnfinishedJournals,
  scanLibrary,
  undoDedupe,
  verifyLibrary,
  MODEL_KINDS,
  type DedupePlan,
  type LinkMode,
} from "@stmerge/model-library";
import type { ModelCache } from "@stmerge/cache";
import type { Command } from "commander";
import type { CliContext, CommandOutput } from "../cli-context.js";
import { addCacheFileOptions, openCliCache } from "../cli-cache.js";
import { CliError, EXIT } from "../cli-error.js";
import { formatBytes, formatCount } from "../format.js";
import { renderPanel, timeRow, type PanelRow } from "../render-panel.js";
import { renderTable } from "../render-table.js";
import { escapeControl } from "../terminal-text.js";

interface LibraryFlags {
  cacheFile?: string;
  cache?: boolean;
}

const LINK_MODES = ["symlink", "hardlink", "reflink", "auto"] as const;

function cacheFor(ctx: CliContext, command: Command, out: CommandOutput): ModelCache | undefined {
  const flags = command.optsWithGlobals() as LibraryFlags;
  if (flags.cache === false) return undefined;
  return openCliCache(ctx.io, { ...(flags.cacheFile ? { cacheFile: flags.cacheFile } : {}) }, (t) => out.warn(t));
}

function roots(ctx: CliContext, paths: readonly string[]): string[] {
  return paths.map((p) => resolve(ctx.io.cwd, p));
}

const show = (p: string) => escapeControl(p);

async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  const stdin = ctx.io.stdin;
  if (!stdin || !stdin.isTTY) return false;
  const rl = createInterface({ input: stdin, output: ctx.io.stderr as NodeJS.WritableStream });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

function printPlan(out: CommandOutput, plan: DedupePlan): void {
  for (const group of plan.groups) {
    out.line(`keep ${show(group.master)}  (${group.masterReason}; ${formatBytes(group.size)}, sha256 ${group.sha256.slice(0, 12)})`);
    for (const a of group.actions) {
      out.line(`  ${a.link.padEnd(8)} ${show(a.duplicate)}  (${a.reason})`);
      if (a.sidecars.length > 0) out.line(`           sidecars stay beside it: ${a.sidecars.map(show).join(", ")}`);
    }
  }
  const actions = plan.groups.reduce((n, g) => n + g.actions.length, 0);
  out.line(`${formatCount(actions)} cop${actions === 1 ? "y" : "ies"} in ${formatCount(plan.groups.length)} group${plan.groups.length === 1 ? "" : "s"} → links; frees ${formatBytes(plan.savedBytes)}`);
}

export function registerLibraryCommand(program: Command, ctx: CliContext): void {
  const library = addCacheFileOptions(
    program
      .command("library")
      .description("one model library across WebUI folders: find duplicate models by content and keep one copy with links, journaled and reversible")
      .option("--json", "print results as JSON"),
    { noCache: "do not read or record SHA-256 values in the metadata cache" },
  )
    .addHelpText(
      "after",
      "\nExamples:\n  $ stmerge library scan ~/sd/webui ~/sd/ComfyUI\n  $ stmerge library dedupe ~/sd/webui ~/sd/ComfyUI --dry-run\n  $ stmerge library dedupe ~/sd/webui ~/sd/ComfyUI --link auto\n  $ stmerge library undo\n  $ stmerge library comfy-paths ~/sd/webui -o ~/sd/ComfyUI/extra_model_paths.yaml",
    )
    .configureHelp({ showGlobalOptions: true });

  library
    .command("scan")
    .description("layouts, models per kind, duplicate groups with the wasted bytes, links in place and broken ones")
    .argument("<root...>", "WebUI install folders or model folders")
    .option("--sniff <which>", "read safetensors headers for the kind: unknown (files whose folder does not tell), all, none", "unknown")
    .action(async (paths: string[], options: { sniff: string }, command: Command) => {
      const out = ctx.output(command);
      if (!["unknown", "all", "none"].includes(options.sniff)) throw new CliError("USAGE", `--sniff must be unknown, all or none (got ${JSON.stringify(options.sniff)})`, { exitCode: EXIT.usage });
      const started = Date.now();
      const scan = await scanLibrary(roots(ctx, paths), { sniff: options.sniff as "unknown", signal: ctx.signal, onProgress: (e) => out.progress.onProgress(e) });
      const found = await findDuplicates(scan, { ...(cacheFor(ctx, command, out) ? { cache: cacheFor(ctx, command, out)! } : {}), signal: ctx.signal, onProgress: (e) => out.progress.onProgress(e) });
      out.progress.done();
      const linked = scan.identities.filter((i) => i.paths.length > 1);
      out.result({
        roots: scan.roots,
        layouts: scan.layouts,
        byKind: scan.byKind,
        files: scan.files.length,
        storedFiles: scan.identities.length,
        duplicates: found.groups.map((g) => ({ sha256: g.sha256, size: g.size, wastedBytes: g.wastedBytes, paths: g.identities.map((i) => i.path) })),
        wastedBytes: found.wastedBytes,
        linked: linked.map((i) => ({ path: i.path, also: i.paths.filter((p) => p.path !== i.path).map((p) => ({ path: p.path, type: p.type })) })),
        brokenLinks: scan.brokenLinks,
        escapingLinks: scan.escapingLinks,
        partialDownloads: scan.partialDownloads,
        unreadable: scan.unreadable,
        stats: found.stats,
      });
      for (const l of scan.layouts) out.line(`${show(l.root)}: ${l.kinds.join(" + ")}`);
      const kinds = MODEL_KINDS.filter((k) => scan.byKind[k].files > 0);
      out.text(renderTable(kinds, [
        { header: "kind", value: (k) => k },
        { header: "files", value: (k) => formatCount(scan.byKind[k].files), align: "right" },
        { header: "size", value: (k) => formatBytes(scan.byKind[k].bytes), align: "right" },
      ]));
      for (const g of found.groups) {
        out.line(`duplicate ×${g.identities.length} (${formatBytes(g.size)} each, ${formatBytes(g.wastedBytes)} wasted):`);
        for (const i of g.identities) out.line(`  ${show(i.path)}`);
      }
      for (const l of scan.brokenLinks) out.line(`broken link: ${show(l.path)} → ${show(l.target)}`);
      for (const l of scan.escapingLinks) out.line(`link out of the roots (not followed): ${show(l.path)} → ${show(l.target)}`);
      for (const p of scan.partialDownloads) out.line(`download in progress (skipped): ${show(p)}`);
      for (const u of scan.unreadable) out.warn(`${show(u.path)}: ${u.reason}`);
      const t = out.theme;
      const rows: PanelRow[] = [
        ["read", `${t.number(formatCount(scan.files.length))} model paths, ${formatCount(scan.identities.length)} stored files ${t.dim(`(${formatCount(linked.length)} shown at more than one path by links)`)}`],
        ["duplicates", found.groups.length ? t.warning(`${formatCount(found.groups.length)} duplicate group${found.groups.length === 1 ? "" : "s"}, ${formatBytes(found.wastedBytes)} wasted`) : t.success("no duplicates")],
        ...(scan.brokenLinks.length || scan.escapingLinks.length ? [["links", t.warning(`${scan.brokenLinks.length} broken, ${scan.escapingLinks.length} out of the roots`)] as PanelRow] : []),
        ["wrote", t.dim("nothing (scan only reads)")],
        ["time", timeRow(Date.now() - started, out.progress.finishedPhases(), t)],
        ...(found.groups.length ? [["next", `stmerge library dedupe ${paths.map(show).join(" ")} --dry-run ${t.dim("(frees it; prints the plan first)")}`] as PanelRow] : []),
      ];
      out.text(renderPanel(`${t.success(t.glyphs.ok)} library scanned`, rows, t, out.columns));
    });

  library
    .command("dedupe")
    .description("keep one master copy per duplicate group and replace the others by links (prints the plan and asks unless --yes)")
    .argument("<root...>", "WebUI install folders or model folders")
    .option("--master <folder>", "the copy under this folder is the master (default: the ComfyUI checkpoints/-style folder, else the oldest copy)")
    .option("--link <kind>", "symlink (relative), hardlink (same file system), reflink (cloning file systems) or auto", "symlink")
    .option("--dry-run", "print the plan and change nothing")
    .option("-y, --yes", "apply without asking")
    .option("--journal <file>", "journal file (default: a new file in $STMERGE_LIBRARY_JOURNALS or ~/.model_merger/library-journals/)")
    .action(async (paths: string[], options: { master?: string; link: string; dryRun?: boolean; yes?: boolean; journal?: string }, command: Command) => {
      const out = ctx.output(command);
      if (!(LINK_MODES as readonly string[]).includes(options.link)) throw new CliError("USAGE", `--link must be one of ${LINK_MODES.join(", ")} (got ${JSON.stringify(options.link)})`, { exitCode: EXIT.usage });
      const journalDir = options.journal ? dirname(resolve(ctx.io.cwd, options.journal)) : defaultJournalDir(ctx.io.env as NodeJS.ProcessEnv);
      const cache = cacheFor(ctx, command, out);
      const started = Date.now();
      if (!options.dryRun) {
        // A re-run first finishes or rolls back what an interrupted run left half done.
        for (const r of await repairUnfinishedJournals(journalDir, { ...(cache ? { cache } : {}), signal: ctx.signal })) {
          for (const o of r.outcomes) if (o.outcome !== "nothing-to-do") out.note(`repaired an interrupted dedupe: ${show(o.duplicate)} ${o.outcome}`);
        }
      }
      const scan = await scanLibrary(roots(ctx, paths), { sniff: "none", signal: ctx.signal, onProgress: (e) => out.progress.onProgress(e) });
      const found = await findDuplicates(scan, { ...(cache ? { cache } : {}), signal: ctx.signal, onProgress: (e) => out.progress.onProgress(e) });
      out.progress.done();
      const plan = await planDedupe(scan.roots, found.groups, { link: options.link as LinkMode, ...(options.master ? { master: resolve(ctx.io.cwd, options.master) } : {}) });
      if (plan.groups.length === 0) {
        out.result({ plan, applied: null });
        out.line("no duplicates: nothing to do");
        return;
      }
      printPlan(out, plan);
      if (options.dryRun) {
        out.result({ plan, applied: null });
        out.note("dry run: nothing was changed");
        return;
      }
      if (!options.yes && !(await confirm(ctx, "Replace these copies by links? [y/N] "))) {
        throw new CliError("LIBRARY_NOT_CONFIRMED", ctx.io.stdin?.isTTY ? "nothing was changed" : "nothing was changed: confirm with --yes (stdin is not a terminal)", { exitCode: EXIT.failure });
      }
      const journal = options.journal ? resolve(ctx.io.cwd, options.journal) : newJournalPath(journalDir);
      const result = await applyDedupe(plan, {
        journal,
        ...(cache ? { cache } : {}),
        signal: ctx.signal,
        onAction: (r, i, total) => {
          const what = r.outcome === "linked" ? `${r.link}` : r.outcome;
          if (r.outcome === "linked") out.note(`[${i + 1}/${total}] ${what} ${show(r.action.duplicate)}${r.reason ? ` (${r.reason})` : ""}`);
          else out.warn(`${show(r.action.duplicate)}: ${r.outcome}: ${r.reason ?? ""}`);
        },
      });
      out.result({ plan, applied: { journal: result.journal, linked: result.linked, skipped: result.skipped, failed: result.failed, results: result.results.map((r) => ({ duplicate: r.action.duplicate, master: r.action.master, outcome: r.outcome, link: r.link ?? null, reason: r.reason ?? null })) } });
      const t = out.theme;
      out.text(
        renderPanel(result.failed > 0 ? `${t.warning(t.glyphs.warn)} deduplicated with failures` : `${t.success(t.glyphs.ok)} deduplicated`, [
          ["links", `${t.success(`${formatCount(result.linked)} linked`)}, ${formatCount(result.skipped)} skipped, ${result.failed ? t.error(`${formatCount(result.failed)} failed`) : "0 failed"}`],
          ["journal", t.path(show(result.journal))],
          ["time", timeRow(Date.now() - started, out.progress.finishedPhases(), t)],
          ["undo", `stmerge library undo ${show(result.journal)}`],
        ], t, out.columns),
      );
      if (result.failed > 0) (program as Command & { stmergeExitCode?: number }).stmergeExitCode = EXIT.failure;
    });

  library
    .command("undo")
    .description("restore the state before a dedupe from its journal (default: the newest)")
    .argument("[journal]", "journal file")
    .action(async (file: string | undefined, _options: object, command: Command) => {
      const out = ctx.output(command);
      let journal = file ? resolve(ctx.io.cwd, file) : undefined;
      if (!journal) {
        for (const j of await listJournals(defaultJournalDir(ctx.io.env as NodeJS.ProcessEnv))) {
          if (!(await readJournal(j)).some((r) => r.op === "closed" && r.by === "undo")) {
            journal = j;
            break;
          }
        }
      }
      if (!journal) throw new CliError("LIBRARY_NO_JOURNAL", `no dedupe to undo in ${show(defaultJournalDir(ctx.io.env as NodeJS.ProcessEnv))}`, { exitCode: EXIT.failure });
      const cache = cacheFor(ctx, command, out);
      const outcomes = await undoDedupe(journal, { ...(cache ? { cache } : {}), signal: ctx.signal });
      out.result({ journal, outcomes });
      for (const o of outcomes) out.line(`${o.outcome.padEnd(14)} ${show(o.duplicate)}`);
      const bad = outcomes.filter((o) => o.outcome === "missing" || o.outcome === "master-changed");
      out.line(`undid ${show(journal)}: ${formatCount(outcomes.filter((o) => o.outcome === "restored").length)} restored${bad.length ? `, ${bad.length} not restorable` : ""}`);
      if (bad.length > 0) (program as Command & { stmergeExitCode?: number }).stmergeExitCode = EXIT.failure;
    });

  library
    .command("link")
    .description("link one stored model (and its sidecars) into each folder where a UI expects it")
    .argument("<model>", "the model file")
    .requiredOption("--into <folder...>", "folders to link it into")
    .option("--link <kind>", "symlink (relative), hardlink (same file system), reflink (cloning file systems) or auto (reflink, else hard link, else symlink)", "symlink")
    .action(async (model: string, options: { into: string[]; link: string }, command: Command) => {
      const out = ctx.output(command);
      if (!(LINK_MODES as readonly string[]).includes(options.link)) throw new CliError("USAGE", `--link must be one of ${LINK_MODES.join(", ")} (got ${JSON.stringify(options.link)})`, { exitCode: EXIT.usage });
      const results = await linkModel(resolve(ctx.io.cwd, model), roots(ctx, options.into), { link: options.link as LinkMode });
      out.result(results);
      for (const r of results) {
        out.line(`${r.outcome === "linked" ? `${r.link} ` : "already there "}${show(r.path)}${r.sidecars.length ? ` (+ ${r.sidecars.map(show).join(", ")})` : ""}`);
        if (r.reason) out.note(`  ${r.reason}`);
      }
    });

  library
    .command("verify")
    .description("broken links, links that escape the roots, and duplicates that came back")
    .argument("<root...>", "WebUI install folders or model folders")
    .action(async (paths: string[], _options: object, command: Command) => {
      const out = ctx.output(command);
      const cache = cacheFor(ctx, command, out);
      const report = await verifyLibrary(roots(ctx, paths), { ...(cache ? { cache } : {}), signal: ctx.signal, onProgress: (e) => out.progress.onProgress(e) });
      out.progress.done();
      out.result({ ...report, duplicates: report.duplicates.map((g) => ({ sha256: g.sha256, size: g.size, paths: g.identities.map((i) => i.path) })) });
      for (const l of report.brokenLinks) out.line(`broken link: ${show(l.path)} → ${show(l.target)}`);
      for (const l of report.escapingLinks) out.line(`link out of the roots: ${show(l.path)} → ${show(l.target)}`);
      for (const g of report.duplicates) out.line(`duplicate again: ${g.identities.map((i) => show(i.path)).join(", ")}`);
      out.line(report.ok ? "library ok" : `${report.brokenLinks.length} broken, ${report.escapingLinks.length} escaping, ${report.duplicates.length} duplicate group(s)`);
      if (!report.ok) (program as Command & { stmergeExitCode?: number }).stmergeExitCode = EXIT.failure;
    });

  library
    .command("comfy-paths")
    .description("the no-link alternative: a ComfyUI extra_model_paths.yaml that points at an A1111/Forge install")
    .argument("<a1111-root>", "the A1111/Forge folder (holding models/Stable-diffusion)")
    .option("-o, --output <file>", "write the YAML here (default: print it)")
    .option("--overwrite", "replace an existing output file")
    .action(async (root: string, options: { output?: string; overwrite?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const abs = resolve(ctx.io.cwd, root);
      await assertA1111Root(abs);
      const yaml = comfyExtraModelPathsYaml(abs);
      if (!options.output) {
        out.result({ yaml });
        out.text(yaml);
        return;
      }
      const target = resolve(ctx.io.cwd, options.output);
      await writeFileAtomic(target, yaml, { overwrite: Boolean(options.overwrite) });
      out.result({ output: target, yaml });
      out.line(`wrote ${show(target)}`);
    });
}
