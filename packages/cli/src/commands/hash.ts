import { resolve } from "node:path";
import { hashFile, HASH_ALGORITHMS, parseHashAlgorithms, type FileHashes, type HashAlgorithm } from "@stmerge/cache";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { addCacheFileOptions, cacheBannerLines, cacheNotUpdated, isCacheFailure, openCliCache } from "../cli-cache.js";
import { CliError } from "../cli-error.js";
import { formatBytes } from "../format.js";
import { renderPanel, timeRow, timingsJson } from "../render-panel.js";
import { escapeControl } from "../terminal-text.js";

interface HashReport {
  readonly path: string;
  readonly sizeBytes: number;
  readonly hashes: FileHashes;
  /** True when the values came from the metadata cache without reading the file. */
  readonly cached: boolean;
}

/** `--algo` is a flag: a wrong value is a usage error (exit 2), like any other bad flag. */
function algorithmsFlag(value: string): HashAlgorithm[] {
  try {
    return parseHashAlgorithms(value);
  } catch (error) {
    throw new CliError("BAD_FLAG", `--algo: ${(error as Error).message}`, { exitCode: 2 });
  }
}

const LABEL: Record<HashAlgorithm, string> = { sha256: "SHA256", autov1: "AutoV1", autov2: "AutoV2", autov3: "AutoV3", crc32: "CRC32", blake3: "BLAKE3" };

export function registerHashCommand(program: Command, ctx: CliContext): void {
  addCacheFileOptions(
    program
      .command("hash")
      .description("compute model hashes (SHA256, AutoV1, AutoV2, AutoV3, CRC32, BLAKE3) in one read of each file; remembered in the metadata cache")
      .argument("<file...>", "model files")
      .option("--json", "print the hashes as JSON")
      .option("--algo <list>", `comma list of ${HASH_ALGORITHMS.join(", ")} or "all"`, "all"),
    { noCache: "always read the file and leave the cache alone" },
  )
    .addHelpText("after", "\nExamples:\n  $ stmerge hash model.safetensors\n  $ stmerge hash *.safetensors --algo sha256,autov2 --json\n  $ stmerge hash lora.safetensors --algo autov3 --no-cache")
    .action(async (files: string[], options: { algo: string; cache: boolean; cacheFile?: string }, command: Command) => {
      const out = ctx.output(command);
      const algorithms = algorithmsFlag(options.algo);
      if (!out.json && !out.quiet) out.banner(await cacheBannerLines(ctx.io, { cache: options.cache, ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}) }, (t) => out.warn(t)));
      const reports: HashReport[] = [];
      const started = Date.now();
      let cache = options.cache ? openCliCache(ctx.io, { ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}) }, (t) => out.warn(t)) : undefined;
      for (const file of files) {
        const path = resolve(ctx.io.cwd, file);
        let report: HashReport;
        // A cache that cannot be read or written costs a warning, never the hashes.
        const [result] = cache
          ? await cache.identify([path], { algorithms, signal: ctx.signal, onProgress: (e) => out.progress.onProgress({ ...e, detail: file }), onWriteError: (e) => (out.warn(cacheNotUpdated(e)), (cache = undefined)) }).catch((error: unknown) => {
              if (!isCacheFailure(error)) throw error;
              out.warn(cacheNotUpdated(error));
              cache = undefined;
              return [];
            })
          : [];
        if (result) {
          const entry = result.entry;
          const hashes: FileHashes = {};
          for (const a of algorithms) hashes[a] = a === "sha256" ? entry.sha256 : a === "autov2" ? entry.sha256.slice(0, 10).toUpperCase() : (entry[a] ?? null);
          report = { path, sizeBytes: entry.file_size, hashes, cached: result.fromCache };
        } else {
          const result = await hashFile(path, { algorithms, signal: ctx.signal, onProgress: (e) => out.progress.onProgress({ ...e, detail: file }) });
          report = { path, sizeBytes: result.size, hashes: result.hashes, cached: false };
        }
        out.progress.done();
        reports.push(report);
        if (!out.json) {
          const t = out.theme;
          out.line(`${t.path(escapeControl(file))}  ${t.dim(`(${formatBytes(report.sizeBytes)}${report.cached ? ", from cache" : ""})`)}`);
          for (const a of algorithms) out.line(`  ${LABEL[a].padEnd(7)} ${report.hashes[a] ? t.hash(report.hashes[a]) : t.dim("-")}`);
        }
      }
      const ms = Date.now() - started;
      const phases = out.progress.finishedPhases();
      out.result({ command: "hash", files: reports, timings: timingsJson(ms, phases) });
      const t = out.theme;
      const fromCache = reports.filter((r) => r.cached).length;
      const bytes = reports.reduce((n, r) => n + (r.cached ? 0 : r.sizeBytes), 0);
      out.text(
        renderPanel(`${t.success(t.glyphs.ok)} hashed`, [
          ["files", `${t.number(String(reports.length))} ${t.dim(`(${fromCache} from the cache, ${reports.length - fromCache} read: ${formatBytes(bytes)})`)}`],
          ["time", timeRow(ms, phases, t)],
          ["cache", cache ? "remembered" : "not used"],
        ], t, out.columns),
      );
    });
}
