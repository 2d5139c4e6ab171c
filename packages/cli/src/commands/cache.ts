import { resolve } from "node:path";
import { createInterface } from "node:readline/promises";
import { collectModelFiles, enrichWithCivitai, HASH_ALGORITHMS, MIN_HASH_PREFIX, type CacheEntry, type ModelCache } from "@stmerge/cache";
import type { Command } from "commander";
import { cacheEntryJson } from "../cache-entry-json.js";
import type { CliContext, CommandOutput } from "../cli-context.js";
import { addCacheFileOptions, cacheBannerLines, civitaiFor, civitaiLookup, civitaiOptional, civitaiStatus, openCliCache, type CacheFlags } from "../cli-cache.js";
import { CliError, EXIT, ExitRequest } from "../cli-error.js";
import { formatBytes, formatCount } from "../format.js";
import { renderPanel, timeRow, type PanelRow } from "../render-panel.js";
import { renderTable } from "../render-table.js";
import { escapeControl } from "../terminal-text.js";
import { addRecursiveOption, isRecursive } from "../recursive-option.js";

interface CacheCommandFlags {
  cacheFile?: string;
  civitai?: boolean;
}

function flagsOf(command: Command): CacheCommandFlags {
  return command.optsWithGlobals() as CacheCommandFlags;
}

function open(ctx: CliContext, command: Command, out: CommandOutput): ModelCache {
  const flags = flagsOf(command);
  return openCliCache(ctx.io, { ...(flags.cacheFile ? { cacheFile: flags.cacheFile } : {}) }, (t) => out.warn(t));
}

function civitaiLabel(e: CacheEntry): string {
  if (!e.civitai) return "";
  if (e.civitai.not_found) return "(not on CivitAI)";
  return [e.civitai.model_name, e.civitai.version_name].filter(Boolean).join(" / ");
}

function describeEntry(out: CommandOutput, e: CacheEntry, paths: string[]): void {
  // Everything here came from a file or from CivitAI: printed escaped.
  out.line(escapeControl(e.filename));
  const row = (k: string, v: unknown) => out.line(`  ${k.padEnd(13)} ${v === null || v === undefined || v === "" ? "-" : escapeControl(v)}`);
  row("SHA256", e.sha256);
  row("AutoV1", e.autov1);
  row("AutoV2", e.autov2 ?? e.sha256.slice(0, 10).toUpperCase());
  row("AutoV3", e.autov3);
  row("CRC32", e.crc32);
  row("BLAKE3", e.blake3);
  row("size", `${formatBytes(e.file_size)} (${formatCount(e.file_size)} bytes)`);
  row("modified", e.last_modified);
  row("precision", e.precision);
  row("architecture", e.architecture ?? "unknown");
  row("cached at", e.cached_at);
  if (e.civitai && !e.civitai.not_found) {
    row("CivitAI", `${civitaiLabel(e)} (model ${e.civitai.model_id ?? "?"}, version ${e.civitai.version_id ?? "?"})`);
    row("base model", e.civitai.base_model);
    row("trained words", e.civitai.trained_words.join(", "));
    row("nsfw", e.civitai.nsfw ? "yes" : "no");
  } else row("CivitAI", e.civitai?.not_found ? "not found" : "not looked up");
  for (const p of paths) row("path", p);
}

/** A query that names a path is taken relative to the working folder; hashes and names as given. */
function queryFor(ctx: CliContext, query: string): string {
  return query.includes("/") || query.includes("\\") ? resolve(ctx.io.cwd, query) : query;
}

const HEX = /^[0-9a-f]+$/i;

/**
 * Refuses a query that names no entry (saying when a hash prefix is too short to be read as one),
 * and a hash prefix that names several, listing their paths so the user can tell them apart.
 */
async function queryOne(c: ModelCache, found: CacheEntry[], query: string): Promise<void> {
  const q = query.trim();
  if (found.length === 0) {
    if (HEX.test(q) && q.length < MIN_HASH_PREFIX) throw new CliError("CACHE_PREFIX_TOO_SHORT", `${JSON.stringify(query)}: a hash prefix needs at least ${MIN_HASH_PREFIX} hex digits`, { exitCode: EXIT.usage });
    throw new CliError("CACHE_NO_MATCH", `no cache entry matches ${JSON.stringify(query)} (try \`stmerge cache list\`)`);
  }
  if (found.length > 1 && HEX.test(q)) throw new CliError("CACHE_AMBIGUOUS", `${JSON.stringify(query)} is the start of ${found.length} hashes: ${await whereAre(c, found)}; give more digits`, { exitCode: EXIT.usage });
}

/** Entries by path (a file name alone can be the same for several), at most five. */
async function whereAre(c: ModelCache, found: readonly CacheEntry[]): Promise<string> {
  const names = await Promise.all(found.slice(0, 5).map(async (e) => `${escapeControl((await c.pathsOf(e.sha256))[0] ?? e.path ?? e.filename)} (${e.sha256.slice(0, 12)})`));
  return `${names.join(", ")}${found.length > 5 ? ", …" : ""}`;
}

async function confirm(ctx: CliContext, question: string): Promise<boolean> {
  const stdin = ctx.io.stdin;
  if (!stdin || !stdin.isTTY) return false;
  const rl = createInterface({ input: stdin, output: ctx.io.stderr as NodeJS.WritableStream });
  try {
    const answer = await rl.question(question);
    return /^y(es)?$/i.test(answer.trim());
  } finally {
    rl.close();
  }
}

export function registerCacheCommand(program: Command, ctx: CliContext): void {
  const cache = addCacheFileOptions(
    program
      .command("cache")
      .description("the metadata cache: what stmerge remembers about model files (hashes, precision, architecture, CivitAI data)")
      .option("--json", "print results as JSON"),
    { noCache: false },
  )
    .addHelpText("after", "\nExamples:\n  $ stmerge cache add ./models --recursive\n  $ stmerge cache list\n  $ stmerge cache show E6BB9EA85B\n  $ stmerge cache verify ./models --prune")
    // Subcommand help also lists --json and --cache-file, which every subcommand takes.
    .configureHelp({ showGlobalOptions: true });

  cache
    .command("info")
    .description("entries, size, location, stale and missing files, CivitAI key status")
    .action(async (_options: object, command: Command) => {
      const out = ctx.output(command);
      const info = await open(ctx, command, out).info();
      const civitai = civitaiStatus(ctx.io);
      out.result({ ...info, civitai });
      out.line(`location      ${info.location}`);
      out.line(`entries       ${formatCount(info.entries)} (${formatCount(info.paths)} paths indexed, ${formatCount(info.withCivitai)} with CivitAI data)`);
      out.line(`size          ${formatBytes(info.sizeBytes)}`);
      out.line(`stale         ${formatCount(info.stale)} (file changed since it was hashed)`);
      out.line(`missing       ${formatCount(info.missing)} (file gone)`);
      out.line(`CivitAI       ${civitai}`);
    });

  cache
    .command("list")
    .description("every cached model as a table")
    .action(async (_options: object, command: Command) => {
      const out = ctx.output(command);
      const entries = (await open(ctx, command, out).store.entries()).sort((a, b) => a.filename.localeCompare(b.filename));
      out.result(entries.map(cacheEntryJson));
      if (entries.length === 0) {
        out.line("the cache is empty (add files with `stmerge cache add <folder>`)");
        return;
      }
      out.text(
        renderTable(entries, [
          { header: "file", value: (e) => e.filename },
          { header: "AutoV2", value: (e) => e.autov2 ?? e.sha256.slice(0, 10).toUpperCase() },
          { header: "size", value: (e) => formatBytes(e.file_size), align: "right" },
          { header: "precision", value: (e) => e.precision ?? "-" },
          { header: "architecture", value: (e) => e.architecture ?? "unknown" },
          { header: "CivitAI", value: (e) => civitaiLabel(e) || "-" },
        ]),
      );
      out.note(`${entries.length} entr${entries.length === 1 ? "y" : "ies"}`);
    });

  cache
    .command("show")
    .description("everything cached about a model, found by hash (SHA256, AutoV1/V2/V3, CRC32, BLAKE3 or a prefix) or file name")
    .argument("<query>", "hash or file name")
    .action(async (query: string, _options: object, command: Command) => {
      const out = ctx.output(command);
      const c = open(ctx, command, out);
      const found = await c.find(queryFor(ctx, query));
      await queryOne(c, found, query);
      const withPaths = await Promise.all(found.map(async (e) => ({ entry: e, paths: await c.pathsOf(e.sha256) })));
      out.result(withPaths.map(({ entry, paths }) => ({ ...cacheEntryJson(entry), paths })));
      withPaths.forEach(({ entry, paths }, i) => {
        if (i > 0) out.line("");
        describeEntry(out, entry, paths);
      });
    });

  const add = cache
    .command("add")
    .description("hash files (and folders of model files) into the cache, reusing entries whose size and mtime are unchanged")
    .argument("<path...>", "files or folders")
    .option("--force", "re-hash even when the cache is valid (and look CivitAI up again)")
    .option("--civitai", "look the files up on CivitAI (default: on when CIVITAI_API_KEY is set)")
    .option("--no-civitai", "do not contact CivitAI");
  addRecursiveOption(add);
  add.action(async (paths: string[], options: { recursive?: boolean; recurse?: boolean; force?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const flags = flagsOf(command);
      // commander sets `civitai` only when a flag was given; undefined means "when a key is set".
      const civitaiFlag = command.getOptionValueSource("civitai") === "cli" ? flags.civitai : undefined;
      if (!out.json && !out.quiet) out.banner(await cacheBannerLines(ctx.io, { ...(flags.cacheFile ? { cacheFile: flags.cacheFile } : {}) }, (t) => out.warn(t)));
      const c = open(ctx, command, out);
      const started = Date.now();
      const files = await collectModelFiles(paths.map((p) => resolve(ctx.io.cwd, p)), { recurse: isRecursive(options) });
      if (files.length === 0) throw new CliError("NO_MODEL_FILES", `no model files in ${paths.join(", ")}${isRecursive(options) ? "" : " (use --recursive for subfolders)"}`, { exitCode: EXIT.failure });
      // One bar over all the bytes to hash: files the cache knows as they are cost nothing.
      const lookups = await c.lookupMany(files);
      const totalBytes = lookups.reduce((n, l) => n + (options.force || l.status !== "fresh" ? (l.size ?? 0) : 0), 0);
      let hashedBytes = 0;
      const results = await c.identify(files, {
        algorithms: HASH_ALGORITHMS,
        signal: ctx.signal,
        ...(options.force ? { force: true } : {}),
        onProgress: (e) =>
          out.progress.onProgress({ phase: "hash", bytesDone: Math.min(totalBytes, hashedBytes + e.bytesDone), bytesTotal: Math.max(totalBytes, 1), ...(e.detail ? { detail: e.detail } : {}) }),
        onFile: (r, i, total) => {
          if (!r.fromCache) hashedBytes += r.entry.file_size;
          // One line per hashed file; files answered by the cache only count in the summary.
          if (!r.fromCache && !out.json && !out.quiet) {
            out.progress.done();
            ctx.io.stderr.write(`[${i + 1}/${total}] ${r.entry.autov2 ?? ""}  ${escapeControl(r.path)}\n`);
          }
        },
      });
      const hashed = results.filter((r) => !r.fromCache).length;
      let civitai: { looked: number; found: number; notFound: number } | undefined;
      const client = civitaiFor(ctx.io, { ...(civitaiFlag !== undefined ? { civitai: civitaiFlag } : {}) } satisfies CacheFlags, (t) => out.note(t));
      if (client) {
        out.note(client.authenticated ? "CivitAI: looking up with your API key" : "CivitAI: looking up without an API key (public data only)");
        civitai = await civitaiOptional(() => enrichWithCivitai(c, civitaiLookup(client), results.map((r) => r.entry), { force: Boolean(options.force) }), (t) => out.warn(t));
      } else if (civitaiFlag === undefined) out.note("CivitAI: no API key set, skipping look-ups (use --civitai to look up anyway)");
      out.result({ files: results.map((r) => ({ path: r.path, sha256: r.entry.sha256, fromCache: r.fromCache })), hashed, fromCache: results.length - hashed, civitai: civitai ?? null });
      const t = out.theme;
      const rows: PanelRow[] = [
        ["files", `${formatCount(results.length)} file${results.length === 1 ? "" : "s"}: ${t.number(formatCount(hashed))} hashed (${formatBytes(hashedBytes)}), ${formatCount(results.length - hashed)} from cache`],
        ...(civitai ? [["looked up", `CivitAI: ${civitai.found} found, ${civitai.notFound} not found of ${civitai.looked} looked up`] as PanelRow] : []),
        ["recorded", `in ${t.path(escapeControl(c.location))}`],
        ["time", timeRow(Date.now() - started, out.progress.finishedPhases(), t)],
        ["next", results.length === 1 ? `stmerge cache show ${results[0]!.entry.sha256.slice(0, 10)}` : "stmerge cache list"],
      ];
      out.text(renderPanel(`${t.success(t.glyphs.ok)} cached`, rows, t, out.columns));
    });

  cache
    .command("remove")
    .description("remove a model's entry, found by hash or file name")
    .argument("<query>", "hash or file name")
    .option("--all", "remove every entry the query matches (otherwise it must match one)")
    .action(async (query: string, options: { all?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const c = open(ctx, command, out);
      const found = await c.find(queryFor(ctx, query));
      if (!options.all || found.length === 0) await queryOne(c, found, query);
      if (found.length > 1 && !options.all) {
        throw new CliError("CACHE_AMBIGUOUS", `${JSON.stringify(query)} matches ${found.length} entries: ${await whereAre(c, found)}; give a hash prefix, or --all`, { exitCode: EXIT.usage });
      }
      const removed = await c.store.removeEntries(found.map((e) => e.sha256));
      out.result({ removed: found.map((e) => ({ filename: e.filename, sha256: e.sha256 })) });
      for (const e of found) out.line(`removed ${escapeControl(e.filename)} (${escapeControl(e.sha256)})`);
      if (removed !== found.length) out.warn(`${found.length - removed} entr${found.length - removed === 1 ? "y was" : "ies were"} already gone`);
    });

  cache
    .command("clear")
    .description("remove every entry (asks first unless --yes)")
    .option("-y, --yes", "do not ask")
    .action(async (options: { yes?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const c = open(ctx, command, out);
      const count = (await c.store.read()).models;
      const n = Object.keys(count).length;
      if (!options.yes) {
        if (!ctx.io.stdin?.isTTY) throw new CliError("CONFIRMATION_REQUIRED", `refusing to clear ${n} cache entries without --yes (no terminal to ask)`, { exitCode: EXIT.usage });
        if (!(await confirm(ctx, `Remove all ${n} entries from ${c.location}? [y/N] `))) {
          out.note("cache left as it was");
          out.result({ cleared: 0 });
          return;
        }
      }
      const cleared = await c.clear();
      out.result({ cleared });
      out.line(`cleared ${cleared} entr${cleared === 1 ? "y" : "ies"} from ${c.location}`);
    });

  cache
    .command("verify")
    .description("check cached paths against the files on disk (all, or under a folder); exits 1 when some changed or vanished, unless --prune drops them")
    .argument("[folder]", "only paths under this folder (also lists its model files the cache lacks)")
    .option("--prune", "remove records of missing or changed files, and entries left with no file")
    .action(async (folder: string | undefined, options: { prune?: boolean }, command: Command) => {
      const out = ctx.output(command);
      const c = open(ctx, command, out);
      const report = await c.verify({ ...(folder ? { folder: resolve(ctx.io.cwd, folder) } : {}), prune: Boolean(options.prune) });
      out.result(report);
      const rows = [
        ...report.stale.map((p) => ({ status: "changed", path: p })),
        ...report.missing.map((p) => ({ status: "missing", path: p })),
        ...report.uncached.map((p) => ({ status: "not cached", path: p })),
      ];
      if (rows.length > 0) out.text(renderTable(rows, [{ header: "status", value: (r) => r.status }, { header: "path", value: (r) => r.path }]));
      out.line(`${report.ok.length} ok, ${report.stale.length} changed, ${report.missing.length} missing${folder ? `, ${report.uncached.length} not cached` : ""}`);
      if (options.prune) out.line(`pruned ${report.prunedPaths} path record${report.prunedPaths === 1 ? "" : "s"} and ${report.prunedEntries} entr${report.prunedEntries === 1 ? "y" : "ies"}`);
      else if (report.stale.length + report.missing.length > 0) {
        out.note("run with --prune to drop them, or `stmerge cache add` to re-hash changed files");
        throw new ExitRequest(EXIT.failure);
      }
    });
}
