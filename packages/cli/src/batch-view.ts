import type { ProgressEvent } from "@stmerge/core-tensors";
import type { BatchConvertFile, BatchFileResult, FileFormatKind } from "@stmerge/merge-engine";
import type { CliIo } from "./cli-io.js";
import { formatBytes, formatDuration } from "./format.js";
import type { ProgressMode } from "./progress-renderer.js";
import { escapeControl } from "./terminal-text.js";
import { PLAIN_THEME, visibleLength, type Theme } from "./theme.js";

/** What each model kind is called on a file's line. */
const FORMAT_NAMES: Readonly<Record<FileFormatKind, string>> = {
  "sd-checkpoint": "SD Model",
  vae: "VAE",
  lora: "LoRA",
  "textual-inversion": "Embedding",
  upscaler: "Upscaler",
  unknown: "Unknown",
};

/** TTY redraws at most this often (10/s), as the single-file progress renderer. */
const FRAME_MS = 100;
const BAR_WIDTH = 24;

/** One file's line: running, or finished with its outcome. */
export interface BatchLine {
  readonly index: number;
  readonly total: number;
  readonly name: string;
  readonly sizeBytes: number;
  readonly format: FileFormatKind | undefined;
  /** 0..1 */
  readonly fraction: number;
  readonly status: "running" | BatchFileResult["status"];
  readonly elapsedMs: number;
}

/**
 * Convert, then the read-back check, each about half of a file's work (both stream every
 * output byte once); the source hash runs beside them on a worker and is not counted.
 */
export function fileFraction(event: ProgressEvent, previous: number): number {
  const part = event.bytesTotal > 0 ? Math.min(1, event.bytesDone / event.bytesTotal) : 0;
  if (event.phase === "convert") return Math.max(previous, part / 2);
  if (event.phase === "verify") return Math.max(previous, 0.5 + part / 2);
  return previous;
}

function outcome(line: BatchLine, theme: Theme, tick: number): string {
  const g = theme.glyphs;
  switch (line.status) {
    case "running":
      return `${theme.path(g.spinner[tick % g.spinner.length]!)} ${theme.dim(formatDuration(line.elapsedMs))}`;
    case "converted":
      return `${theme.success(g.ok)} ${formatDuration(line.elapsedMs)}`;
    case "skipped":
      return `${theme.success(g.ok)} already converted`;
    case "failed":
      return theme.error(`${g.fail} Error`);
    case "interrupted":
      return theme.warning(`${g.fail} interrupted`);
    default:
      return theme.dim("not attempted");
  }
}

/**
 * `[3/50] lora_style.ckpt (LoRA, 144 MB) ████████ 100% ✔ 2.0 s` in at most `columns - 1` visible
 * characters: the file name is shortened from the left (its end is what tells files apart),
 * then the bar, so a line never wraps and the live view never grows past one line per file.
 */
export function formatBatchLine(line: BatchLine, options: { columns: number; theme: Theme; tick?: number }): string {
  const { theme } = options;
  const max = Math.max(20, options.columns - 1);
  const counter = `[${String(line.index).padStart(String(line.total).length)}/${line.total}]`;
  const pct = `${String(Math.floor(line.fraction * 100)).padStart(3)}%`;
  const tail = outcome(line, theme, options.tick ?? 0);
  let what = `(${line.format ? `${FORMAT_NAMES[line.format]}, ` : ""}${formatBytes(line.sizeBytes)})`;
  // On a narrow terminal the kind and size go first, so a few characters of the name remain.
  if (counter.length + what.length + pct.length + visibleLength(tail) + 4 + 6 > max) what = "";
  const fixed = counter.length + what.length + pct.length + visibleLength(tail) + (what ? 4 : 3);
  let name = escapeControl(line.name);
  let barWidth = BAR_WIDTH;
  const room = max - fixed - barWidth - 1;
  if (name.length > room) {
    barWidth = Math.max(0, Math.min(BAR_WIDTH, max - fixed - Math.min(name.length, 12) - 1));
    const nameRoom = Math.max(4, max - fixed - barWidth - (barWidth > 0 ? 1 : 0));
    if (name.length > nameRoom) name = `…${name.slice(name.length - nameRoom + 1)}`;
  }
  const filled = Math.round(line.fraction * barWidth);
  const bar = barWidth > 0 ? ` ${(line.status === "converted" || line.status === "skipped" ? theme.success : line.status === "running" ? theme.path : theme.dim)(theme.glyphs.barFull.repeat(filled) + theme.glyphs.barEmpty.repeat(barWidth - filled))}` : "";
  return `${theme.dim(counter)} ${name}${what ? ` ${theme.dim(what)}` : ""}${bar} ${theme.number(pct)} ${tail}`;
}

/** The line of a finished file in logs and pipes: no bar, no control codes, the reason of a failure. */
export function formatPlainBatchLine(result: BatchFileResult, total: number): string {
  const counter = `[${result.index}/${total}]`;
  const name = escapeControl(result.file.relative);
  const kind = result.format ? `${FORMAT_NAMES[result.format]}, ` : "";
  switch (result.status) {
    case "converted":
      return `${counter} ${name} (${kind}${formatBytes(result.sizeBefore)} -> ${formatBytes(result.sizeAfter)}) ok ${formatDuration(result.ms)}`;
    case "skipped":
      return `${counter} ${name} (${kind}${formatBytes(result.sizeBefore)}) ok, already converted`;
    case "interrupted":
      return `${counter} ${name} (${formatBytes(result.sizeBefore)}) interrupted, no output written`;
    case "not-attempted":
      return `${counter} ${name} (${formatBytes(result.sizeBefore)}) not attempted`;
    default:
      return `${counter} ${name} (${formatBytes(result.sizeBefore)}) failed: ${escapeControl(shortReason(result))}`;
  }
}

/** A failure's reason without the input's absolute path in front (the line names the file already). */
export function shortReason(result: BatchFileResult): string {
  const message = result.error?.message ?? "";
  return message.startsWith(`${result.file.input}: `) ? message.slice(result.file.input.length + 2) : message;
}

/** A file's --json line (camelCase, one line). */
function batchFileJson(result: BatchFileResult, total: number): Record<string, unknown> {
  return {
    type: "file",
    index: result.index,
    total,
    input: result.file.input,
    relative: result.file.relative,
    output: result.status === "converted" || result.status === "skipped" ? result.file.output : null,
    status: result.status,
    format: result.format ?? null,
    sizeBefore: result.sizeBefore,
    sizeAfter: result.sizeAfter,
    ms: result.ms,
    sourceSha256: result.result?.inputSha256 ?? null,
    error: result.error ? { code: result.error.code, message: result.error.message } : null,
  };
}

export interface BatchView {
  start(file: BatchConvertFile, index: number, total: number): void;
  progress(file: BatchConvertFile, event: ProgressEvent): void;
  finish(result: BatchFileResult, total: number): void;
  /** Text printed above the live lines (a --verbose panel on stdout, a warning on stderr). */
  above(text: string, stream: "stdout" | "stderr"): void;
  /** Stops drawing and clears the live lines. */
  done(): void;
}

interface Running {
  readonly file: BatchConvertFile;
  readonly index: number;
  readonly total: number;
  readonly startedAt: number;
  fraction: number;
}

/**
 * The batch's per-file view on stderr (stdout carries the summary, or the JSON lines). On a
 * TTY a finished file's line is printed once and stays; the files in progress (one per job)
 * are live lines below it, redrawn at most 10 times a second, so the screen holds exactly one
 * line per file. In logs and pipes, one plain line per finished file; with --json, one JSON
 * line per file on stdout; nothing live with --quiet.
 */
export function createBatchView(io: CliIo, mode: ProgressMode, options: { theme?: Theme; now?: () => number; schedule?: (fn: () => void, ms: number) => () => void } = {}): BatchView {
  const stream = io.stderr;
  const theme = options.theme ?? PLAIN_THEME;
  const now = options.now ?? Date.now;
  const schedule =
    options.schedule ??
    ((fn: () => void, ms: number) => {
      const timer = setTimeout(fn, ms);
      timer.unref?.();
      return () => clearTimeout(timer);
    });
  const live = mode === "tty" && stream.columns !== 0 ? "tty" : mode;
  const running = new Map<string, Running>();
  let drawn = 0;
  let cancel: (() => void) | undefined;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let tick = 0;
  const columns = () => stream.columns || 80;

  const clear = (): string => (drawn > 0 ? `\r\x1b[${drawn}A\x1b[J` : "");
  const liveLines = (): string => {
    let out = "";
    for (const r of running.values()) {
      out += `${formatBatchLine({ index: r.index, total: r.total, name: r.file.relative, sizeBytes: r.file.sizeBytes, format: undefined, fraction: r.fraction, status: "running", elapsedMs: now() - r.startedAt }, { columns: columns(), theme, tick })}\n`;
    }
    return out;
  };
  const draw = (prefix = ""): void => {
    cancel?.();
    cancel = undefined;
    const lines = liveLines();
    stream.write(`${clear()}${prefix}${lines}`);
    drawn = running.size;
    lastDraw = now();
    tick++;
    if (running.size > 0) cancel = schedule(() => draw(), FRAME_MS);
  };
  const requestDraw = (): void => {
    if (now() - lastDraw >= FRAME_MS) draw();
  };

  return {
    start(file, index, total) {
      running.set(file.input, { file, index, total, startedAt: now(), fraction: 0 });
      if (live === "tty") draw();
    },
    progress(file, event) {
      const r = running.get(file.input);
      if (!r) return;
      r.fraction = fileFraction(event, r.fraction);
      if (live === "tty") requestDraw();
    },
    finish(result, total) {
      running.delete(result.file.input);
      if (live === "json") io.stdout.write(`${JSON.stringify(batchFileJson(result, total))}\n`);
      else if (live === "plain") stream.write(`${formatPlainBatchLine(result, total)}\n`);
      else if (live === "tty") {
        const line = formatBatchLine(
          { index: result.index, total, name: result.file.relative, sizeBytes: result.sizeBefore, format: result.format, fraction: result.status === "converted" || result.status === "skipped" ? 1 : 0, status: result.status, elapsedMs: result.ms },
          { columns: columns(), theme },
        );
        draw(`${line}\n`);
      }
    },
    above(text, target) {
      if (live !== "tty") {
        (target === "stdout" ? io.stdout : stream).write(text);
        return;
      }
      // Live lines are cleared first, then drawn again below the text.
      stream.write(clear());
      drawn = 0;
      (target === "stdout" ? io.stdout : stream).write(text);
      draw();
    },
    done() {
      cancel?.();
      cancel = undefined;
      running.clear();
      if (live === "tty") stream.write(clear());
      drawn = 0;
    },
  };
}
