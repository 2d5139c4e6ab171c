import { resolve } from "node:path";
import { hashFile, HASH_ALGORITHMS, parseHashAlgorithms, type FileHashes, type HashAlgorithm } from "@stmerge/cache";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { cacheBannerLines, openCliCache } from "../cli-cache.js";
import { formatBytes } from "../format.js";
import { escapeControl } from "../terminal-text.js";

export interface HashReport {
  readonly file: string;
  readonly size: number;
  readonly hashes: FileHashes;
  /** True when the values came from the metadata cache without reading the file. */
  readonly cached: boolean;
}

const LABEL: Record<HashAlgorithm, string> = { sha256: "SHA256", autov1: "AutoV1", autov2: "AutoV2", autov3: "AutoV3", crc32: "CRC32", blake3: "BLAKE3" };

export function registerHashCommand(program: Command, ctx: CliContext): void {
  program
    .command("hash")
    .description("compute model hashes (SHA256, AutoV1, AutoV2, AutoV3, CRC32, BLAKE3) in one read of each file; remembered in the metadata cache")
    .argument("<file...>", "model files")
    .option("--json", "print the hashes as JSON")
    .option("--algo <list>", `comma list of ${HASH_ALGORITHMS.join(", ")} or "all"`, "all")
    .option("--no-cache", "always read the file and leave the cache alone")
    .option("--cache-file <path>", "metadata cache file (default: $STMERGE_CACHE or ~/.model_merger/model_cache.json)")
    .addHelpText("after", "\nExamples:\n  $ stmerge hash model.safetensors\n  $ stmerge hash *.safetensors --algo sha256,autov2 --json\n  $ stmerge hash lora.safetensors --algo autov3 --no-cache")
    .action(async (files: string[], options: { algo: string; cache: boolean; cacheFile?: string }, command: Command) => {
      const out = ctx.output(command);
      const algorithms = parseHashAlgorithms(options.algo);
      if (!out.json && !out.quiet) out.banner(await cacheBannerLines(ctx.io, { cache: options.cache, ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}) }, (t) => out.warn(t)));
      const reports: HashReport[] = [];
      const cache = options.cache ? openCliCache(ctx.io, { ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}) }, (t) => out.warn(t)) : undefined;
      for (const file of files) {
        const path = resolve(ctx.io.cwd, file);
        let report: HashReport;
        if (cache) {
          const [result] = await cache.identify([path], { algorithms, signal: ctx.signal, onProgress: (e) => out.progress.onProgress({ ...e, detail: file }) });
          const entry = result!.entry;
          const hashes: FileHashes = {};
          for (const a of algorithms) hashes[a] = a === "sha256" ? entry.sha256 : a === "autov2" ? entry.sha256.slice(0, 10).toUpperCase() : (entry[a] ?? null);
          report = { file: path, size: entry.file_size, hashes, cached: result!.fromCache };
        } else {
          const result = await hashFile(path, { algorithms, signal: ctx.signal, onProgress: (e) => out.progress.onProgress({ ...e, detail: file }) });
          report = { file: path, size: result.size, hashes: result.hashes, cached: false };
        }
        out.progress.done();
        reports.push(report);
        if (!out.json) {
          out.line(`${escapeControl(file)}  (${formatBytes(report.size)}${report.cached ? ", from cache" : ""})`);
          for (const a of algorithms) out.line(`  ${LABEL[a].padEnd(7)} ${report.hashes[a] ?? "-"}`);
        }
      }
      out.result(reports);
    });
}
