import { basename, join, resolve } from "node:path";
import { writeFileAtomic } from "@stmerge/core-tensors";
import { applyKnownIdentities, formatManifest, scanFolder, type FileHashes as ScanHashes } from "@stmerge/merge-engine";
import type { Command } from "commander";
import { enrichWithCivitai } from "@stmerge/cache";
import { addCacheOptions, cacheBannerLines, cachedModelIdentity, cacheNotUpdated, civitaiFor, civitaiLookup, civitaiOptional, lookupCachedIdentity, openCliCache, type CacheFlags } from "../cli-cache.js";
import type { CliContext } from "../cli-context.js";
import { formatBytes } from "../format.js";
import { renderPanel, timeRow, timingsJson, type PanelRow } from "../render-panel.js";
import { renderTable } from "../render-table.js";
import { escapeControl } from "../terminal-text.js";
import { addRecursiveOption, isRecursive } from "../recursive-option.js";

interface ScanFlags extends CacheFlags {
  vae?: string;
  output?: string;
  computeHashes?: boolean;
  equalWeights: boolean;
  skipErrors?: boolean;
  includeMerged?: boolean;
  recursive?: boolean;
  recurse?: boolean;
  overwrite?: boolean;
}

export function registerScanCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command("scan")
    .description("write a merge manifest for a folder of .safetensors models (reads headers only: architecture, precision, output name)")
    .argument("<folder>", "folder with the models to merge")
    .option("--vae <file>", "a standalone VAE to bake into the merge")
    .option("-o, --output <manifest>", "manifest path (default: <folder>/merge_manifest.json)")
    .option("--compute-hashes", "record SHA-256 and CRC32 of every file (reads each file once; remembered in the cache)")
    .option("--no-equal-weights", "set every weight to 1.0 instead of 1/N")
    .option("--skip-errors", "skip files that cannot be read (e.g. still copying)")
    .option("--include-merged", "also list earlier stmerge merge outputs (left out by default)")
    .option("--overwrite", "replace an existing manifest")
    .option("--json", "print the manifest and findings as JSON");
  addRecursiveOption(command);
  addCacheOptions(command)
    .addHelpText("after", "\nExamples:\n  $ stmerge scan ./models\n  $ stmerge scan ./models --vae ./vae/sdxl_vae.safetensors --compute-hashes\n  $ stmerge scan ./models -o ./merges/pony-mix.json --recursive")
    .action(async (folder: string, options: ScanFlags, cmd: Command) => {
      const out = ctx.output(cmd);
      const cacheFlags: CacheFlags = { ...(options.cache === false ? { cache: false } : {}), ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}) };
      out.banner(await cacheBannerLines(ctx.io, cacheFlags, (t) => out.warn(t)));
      const dir = resolve(ctx.io.cwd, folder);
      const manifestPath = options.output ? resolve(ctx.io.cwd, options.output) : join(dir, "merge_manifest.json");
      const started = Date.now();
      const cache = options.computeHashes && options.cache !== false ? openCliCache(ctx.io, cacheFlags, (t) => out.warn(t)) : undefined;
      let cacheWarned = false;
      const warnCacheOnce = (error: Error) => {
        if (!cacheWarned) out.warn(cacheNotUpdated(error));
        cacheWarned = true;
      };
      const hashFile = async (path: string): Promise<ScanHashes> => {
        if (cache) {
          const [r] = await cache.identify([path], { algorithms: ["sha256", "crc32"], signal: ctx.signal, onWriteError: warnCacheOnce, onProgress: (e) => out.progress.onProgress({ ...e, detail: basename(path) }) });
          out.progress.done();
          return { sha256: r!.entry.sha256, ...(r!.entry.crc32 ? { crc32: r!.entry.crc32.toUpperCase() } : {}) };
        }
        const { hashFile: hash } = await import("@stmerge/cache");
        const r = await hash(path, { algorithms: ["sha256", "crc32"], signal: ctx.signal, onProgress: (e) => out.progress.onProgress({ ...e, detail: basename(path) }) });
        out.progress.done();
        return { sha256: r.hashes.sha256!, ...(r.hashes.crc32 ? { crc32: r.hashes.crc32.toUpperCase() } : {}) };
      };
      const result = await scanFolder(dir, {
        manifestPath,
        recursive: isRecursive(options),
        skipErrors: Boolean(options.skipErrors),
        includeMerged: Boolean(options.includeMerged),
        equalWeights: options.equalWeights,
        ...(options.vae ? { vae: resolve(ctx.io.cwd, options.vae) } : {}),
        ...(options.computeHashes ? { hashFile } : {}),
      });
      // --civitai (or a key): look the hashed files up, so their base model names SDXL derivatives below.
      const civitaiFlag = cmd.getOptionValueSource("civitai") === "cli" ? (options as { civitai?: boolean }).civitai : undefined;
      const client = civitaiFlag === false ? undefined : civitaiFor(ctx.io, civitaiFlag !== undefined ? { civitai: civitaiFlag } : {}, (t) => out.note(t));
      if (client && options.cache === false) out.warn("CivitAI: not looked up, because answers are kept in the cache and --no-cache is set");
      else if (client) {
        const known = await Promise.all(result.models.map((m) => lookupCachedIdentity(m.path, ctx.io, cacheFlags)));
        const entries = known.filter((e): e is NonNullable<typeof e> => e !== undefined);
        const unhashed = known.length - entries.length;
        if (unhashed) out.warn(`CivitAI: ${unhashed} file${unhashed === 1 ? " has" : "s have"} no hash yet and ${unhashed === 1 ? "was" : "were"} not looked up; add --compute-hashes`);
        if (entries.length) {
          const found = await civitaiOptional(() => enrichWithCivitai(openCliCache(ctx.io, cacheFlags, (t) => out.warn(t)), civitaiLookup(client), entries), (t) => out.warn(t));
          if (found) out.note(`CivitAI: ${found.found} found, ${found.notFound} not found of ${found.looked} looked up`);
        }
      }
      // The cache knows names the keys cannot tell (an SDXL file that CivitAI calls Pony), and
      // hashes computed earlier cost nothing to record.
      const manifest = await applyKnownIdentities(result, (path) => cachedModelIdentity(path, ctx.io, cacheFlags));
      const models = manifest.models as Record<string, unknown>[];
      await writeFileAtomic(manifestPath, formatManifest(manifest), { overwrite: Boolean(options.overwrite) });

      for (const s of result.skipped) out.warn(`skipped ${s.path}: ${s.error}`);
      for (const w of result.warnings) out.warn(w);
      // The manifest document keeps its file's own (Python-compatible) field names; everything around it is camelCase.
      out.result({ command: "scan", manifest: { path: manifestPath, document: manifest }, skipped: result.skipped, mergeOutputs: result.mergeOutputs, legacyCheckpoints: result.legacyCheckpoints, warnings: result.warnings, detection: result.models.map((m) => ({ path: m.path, ...m.report })), timings: timingsJson(Date.now() - started, out.progress.finishedPhases()) });
      out.text(
        renderTable(result.models, [
          { header: "#", value: (m) => String(result.models.indexOf(m)) },
          { header: "model", value: (m) => basename(m.path) },
          { header: "architecture", value: (m) => `${String(models[result.models.indexOf(m)]!.architecture)}${m.report.variant !== "standard" ? ` (${m.report.variant})` : ""}${m.report.prediction === "v" ? " v-pred" : ""}` },
          { header: "precision", value: (m) => m.precision },
          { header: "tensors", value: (m) => String(m.tensors) },
          { header: "size", value: (m) => formatBytes(m.bytes) },
          { header: "weight", value: (m) => String(Number((models[result.models.indexOf(m)]!.weight as number).toFixed(4))) },
        ]),
      );
      const t = out.theme;
      const bytes = result.models.reduce((n, m) => n + m.bytes, 0);
      const hashed = models.filter((m) => m.sha256).length;
      const rows: PanelRow[] = [
        ["read", `${t.number(String(result.models.length))} model${result.models.length === 1 ? "" : "s"} in ${t.path(escapeControl(dir))} ${t.dim(`(${formatBytes(bytes)}; ${options.computeHashes ? "every byte hashed" : "headers only"})`)}`],
        ...(result.skipped.length ? [["skipped", t.warning(`${result.skipped.length} unreadable (see warnings)`)] as PanelRow] : []),
        ...(result.vae ? [["vae", `${t.path(escapeControl(basename(result.vae.path)))} ${t.dim(`(${result.vae.report.label}, ${result.vae.precision})`)}`] as PanelRow] : []),
        ["manifest", `written to ${t.path(escapeControl(manifestPath))}`],
        ["output", `${t.path(escapeControl((manifest.output as { path: string }).path))} ${t.dim("(where the merge will write)")}`],
        ["hashes", hashed ? `${t.number(String(hashed))} of ${models.length} recorded` : t.dim("none (--compute-hashes records them)")],
        ["time", timeRow(Date.now() - started, out.progress.finishedPhases(), t)],
        ["next", `stmerge merge --manifest ${escapeControl(manifestPath)} --dry-run ${t.dim("(review the manifest first)")}`],
      ];
      out.text(renderPanel(`${t.success(t.glyphs.ok)} manifest written`, rows, t, out.columns));
    });
}
