import type { BatchConvertSummary, BatchFileResult, FileFormatKind } from "@stmerge/merge-engine";
import { formatBytes, formatDuration } from "./format.js";
import { shortReason } from "./batch-view.js";
import { renderPanel, type PanelRow } from "./render-panel.js";
import { escapeControl } from "./terminal-text.js";
import type { Theme } from "./theme.js";

/** Summary categories in the order they are shown, with their plural names. */
const CATEGORIES: readonly (readonly [FileFormatKind, string])[] = [
  ["sd-checkpoint", "SD models"],
  ["vae", "VAEs"],
  ["lora", "LoRAs"],
  ["textual-inversion", "embeddings"],
  ["upscaler", "upscalers"],
  ["unknown", "unknown"],
];

/** The panel lists at most this many failed files; the error log has them all. */
const MAX_FAILED_ROWS = 20;

export interface FormatTotals {
  readonly format: FileFormatKind;
  readonly name: string;
  readonly count: number;
  readonly sizeBefore: number;
  readonly sizeAfter: number;
}

/** Files that have their output (converted now or before). */
const hasOutput = (r: BatchFileResult): boolean => r.status === "converted" || r.status === "skipped";

/** Per model kind: how many files have an output and their sizes before → after. */
export function totalsByFormat(results: readonly BatchFileResult[]): FormatTotals[] {
  return CATEGORIES.map(([format, name]) => {
    const mine = results.filter((r) => hasOutput(r) && (r.format ?? "unknown") === format);
    return { format, name, count: mine.length, sizeBefore: mine.reduce((n, r) => n + r.sizeBefore, 0), sizeAfter: mine.reduce((n, r) => n + r.sizeAfter, 0) };
  }).filter((t) => t.count > 0);
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? "" : "s"}`;

/** `conversion_errors_20261202T051100Z.log` */
export function errorLogName(at: Date): string {
  return `conversion_errors_${at.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z")}.log`;
}

/** Everything known about each failure (code, message, stack, causes), for the log beside the outputs. */
export function errorLogText(summary: BatchConvertSummary, at: Date): string {
  const failed = summary.results.filter((r) => r.status === "failed");
  const head = [`stmerge convert ${summary.folder}`, `output folder: ${summary.outputDir}`, `written: ${at.toISOString()}`, `${plural(failed.length, "file")} failed of ${summary.results.length}`];
  if (summary.stopped) head.push(`stopped: ${summary.stopped.message}`);
  const blocks = failed.map((r) => [`== ${r.file.relative} (${r.file.input}, ${r.sizeBefore} bytes)`, `code: ${r.error!.code}`, `message: ${r.error!.message}`, r.error!.detail].join("\n"));
  return `${[head.join("\n"), ...blocks].join("\n\n")}\n`;
}

/** The summary as the closing panel: successes, per-format sizes, failures one line each, time, where the outputs are. */
export function renderBatchSummary(summary: BatchConvertSummary, options: { theme: Theme; columns: number; errorLog?: string | undefined }): string {
  const t = options.theme;
  const { results } = summary;
  const ok = results.filter(hasOutput);
  const skipped = results.filter((r) => r.status === "skipped").length;
  const failed = results.filter((r) => r.status === "failed");
  const open = results.filter((r) => r.status === "interrupted" || r.status === "not-attempted");
  const arrow = t.glyphs.arrow;
  const rows: PanelRow[] = [["success", `${t.number(`${ok.length}/${results.length}`)} files converted${skipped ? t.dim(` (${skipped} already converted, skipped)`) : ""}`]];
  for (const c of totalsByFormat(results)) rows.push([c.name, `${t.number(String(c.count))} (${formatBytes(c.sizeBefore)} ${arrow} ${formatBytes(c.sizeAfter)})`]);
  failed.slice(0, MAX_FAILED_ROWS).forEach((r, i) => rows.push([i === 0 ? "failed" : "", `${t.error(escapeControl(r.file.relative))}: ${escapeControl(shortReason(r))}`]));
  if (failed.length > MAX_FAILED_ROWS) rows.push(["", t.dim(`… and ${failed.length - MAX_FAILED_ROWS} more (see the error log)`)]);
  if (summary.stopped) rows.push(["stopped", escapeControl(summary.stopped.reason === "aborted" ? `interrupted; ${plural(open.length, "file")} not converted (no partial output)` : `${summary.stopped.message}; ${plural(open.length, "file")} not attempted`)]);
  if (summary.unsupported.length) {
    const names = summary.unsupported.slice(0, 3).map(escapeControl).join(", ");
    rows.push(["ignored", t.dim(`${plural(summary.unsupported.length, "file")} not .ckpt .pt .pth .bin (${names}${summary.unsupported.length > 3 ? ", …" : ""})`)]);
  }
  rows.push(["time", `${t.number(formatDuration(summary.ms))}${t.dim(` (${plural(summary.jobs, "job")})`)}`]);
  rows.push(["saved to", t.path(escapeControl(`${summary.outputDir}/`))]);
  if (options.errorLog) rows.push(["error log", t.path(escapeControl(options.errorLog))]);
  const title =
    summary.stopped?.reason === "aborted"
      ? t.warning(`${t.glyphs.fail} batch conversion interrupted`)
      : failed.length === 0 && open.length === 0
        ? t.success(`${t.glyphs.ok} batch conversion complete`)
        : t.error(`${t.glyphs.fail} batch conversion: ${plural(failed.length + open.length, "file")} not converted`);
  return renderPanel(title, rows, t, options.columns);
}

/** The final --json line: counts, per-format totals, failures, time, output folder, error log. */
export function batchSummaryJson(summary: BatchConvertSummary, errorLog: string | undefined): Record<string, unknown> {
  const count = (status: BatchFileResult["status"]) => summary.results.filter((r) => r.status === status).length;
  return {
    type: "summary",
    command: "convert",
    folder: summary.folder,
    outputDir: summary.outputDir,
    total: summary.results.length,
    converted: count("converted"),
    skipped: count("skipped"),
    failed: count("failed"),
    interrupted: count("interrupted"),
    notAttempted: count("not-attempted"),
    unsupported: summary.unsupported,
    byFormat: totalsByFormat(summary.results).map(({ format, count: n, sizeBefore, sizeAfter }) => ({ format, count: n, sizeBefore, sizeAfter })),
    failures: summary.results.filter((r) => r.status === "failed").map((r) => ({ input: r.file.input, code: r.error!.code, message: r.error!.message })),
    stopped: summary.stopped ?? null,
    jobs: summary.jobs,
    totalMs: summary.ms,
    errorLog: errorLog ?? null,
  };
}
