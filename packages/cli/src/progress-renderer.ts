import type { ProgressCallback, ProgressEvent } from "@stmerge/core-tensors";
import type { CliIo } from "./cli-io.js";
import { formatBytes, formatClock, formatDuration, formatRate } from "./format.js";
import { ProgressState, type PhaseSnapshot } from "./progress-state.js";
import { escapeControl } from "./terminal-text.js";
import { PLAIN_THEME, type Theme } from "./theme.js";

export type ProgressMode = "tty" | "plain" | "json" | "none";

/** TTY redraws at most this often (10/s). */
const FRAME_MS = 100;
/** Plain (log) mode: a progress line per phase at most this often, besides its start and end lines. */
const PLAIN_INTERVAL_MS = 10_000;
/** --json: a progress line per phase at most this often (2/s), besides its first and last. */
const JSON_INTERVAL_MS = 500;
/** At this width and below, a TTY line is only phase, bar and percentage. */
const NARROW_COLUMNS = 40;

export interface ProgressRenderer {
  readonly onProgress: ProgressCallback;
  /** Clears the live lines (TTY) so the next output starts on a clean line; call on finish and error. */
  done(): void;
  /**
   * done(), and nothing is drawn again: on interrupt, a library still winding down (items in
   * flight finishing their writes) reports progress that must not redraw over the interrupt line.
   */
  stop(): void;
  /** Every phase run that finished, with its time and throughput, for the summary. */
  finishedPhases(): readonly PhaseSnapshot[];
}

export interface ProgressRendererOptions {
  readonly theme?: Theme;
  /** Clock in ms; injected by tests. */
  readonly now?: () => number;
  /** Runs `fn` after `ms`; returns a cancel function. Injected by tests; the default timer never keeps the process alive. */
  readonly schedule?: (fn: () => void, ms: number) => () => void;
}

function defaultSchedule(fn: () => void, ms: number): () => void {
  const timer = setTimeout(fn, ms);
  timer.unref?.();
  return () => clearTimeout(timer);
}


type Part = readonly [text: string, style: (s: string) => string];

function bar(fraction: number, width: number, theme: Theme, finished: boolean): Part {
  const filled = Math.round(fraction * width);
  const text = theme.glyphs.barFull.repeat(filled) + theme.glyphs.barEmpty.repeat(width - filled);
  return [text, finished ? theme.success : theme.path];
}

function join(parts: readonly Part[]): { plain: string; styled: string } {
  return { plain: parts.map((p) => p[0]).join(" "), styled: parts.map(([t, s]) => s(t)).join(" ") };
}

interface LineOptions {
  readonly columns: number;
  readonly theme: Theme;
  readonly phaseWidth: number;
  readonly tick: number;
  /** The bar width every concurrent line shares (the narrowest line's), so their bars and numbers line up. */
  readonly barWidth?: number;
}

/** Which optional parts fit one phase's line and how wide its bar may be there. */
function layout(s: PhaseSnapshot, options: LineOptions) {
  const { theme, columns } = options;
  const max = Math.max(1, columns - 1);
  const g = theme.glyphs;
  const icon: Part = s.finished ? [g.ok, theme.success] : [g.spinner[options.tick % g.spinner.length]!, theme.path];
  const phase: Part = [s.phase.padEnd(options.phaseWidth), theme.label];
  const pct: Part | undefined = s.fraction === null ? undefined : [`${String(Math.floor(s.fraction * 100)).padStart(3)}%`, theme.number];
  if (columns <= NARROW_COLUMNS) {
    const head = [phase[0], pct?.[0] ?? ""].join(" ");
    return { narrow: true as const, max, icon, phase, pct, kept: [] as Part[], currentRoom: 0, barWidth: Math.max(0, Math.min(20, max - head.length - 1)) };
  }
  // Fixed-width fields, so the bar does not jump as numbers grow.
  const bytes: Part = [s.bytesTotal > 0 ? `${formatBytes(s.bytesDone).padStart(7)}/${formatBytes(s.bytesTotal)}` : formatBytes(s.bytesDone).padStart(7), theme.number];
  const rate: Part = [(s.bytesPerSecond === null ? "-- MB/s" : formatRate(s.bytesPerSecond)).padStart(9), theme.number];
  const elapsed: Part = [formatClock(s.elapsedMs), theme.dim];
  const eta: Part | undefined = s.finished || s.fraction === null ? undefined : [`ETA ${s.etaMs === null ? "-:--" : formatClock(s.etaMs)}`, theme.dim];
  const items: Part | undefined = s.itemsTotal ? [`${String(s.itemsDone ?? 0).padStart(String(s.itemsTotal).length)}/${s.itemsTotal}`, theme.dim] : s.itemsDone !== null && s.fraction === null ? [String(s.itemsDone), theme.dim] : undefined;
  const optional: (Part | undefined)[] = [items, bytes, rate, elapsed, eta];
  // Drop parts until the line (with a bar of at least 10) fits.
  let kept = optional.filter((p): p is Part => p !== undefined);
  const fixedLength = (parts: readonly Part[]): number => join([icon, phase, ...(pct ? [pct] : []), ...parts]).plain.length;
  // The current block or tensor needs at least 16 characters (or its length) to say anything;
  // it is the first thing left out when the line is short of room.
  let currentRoom = s.current && !s.finished ? Math.min(s.current.length, 16) + 1 : 0;
  const order: (Part | "current" | undefined)[] = ["current", elapsed, items, bytes, rate, eta];
  for (const drop of order) {
    if (fixedLength(kept) + (s.fraction === null ? 0 : 11) + currentRoom <= max) break;
    if (drop === "current") currentRoom = 0;
    else kept = kept.filter((p) => p !== drop);
  }
  if (currentRoom > 0) currentRoom = Math.min(s.current!.length, 24) + 1;
  const barWidth = s.fraction === null ? 0 : Math.max(Math.min(10, max - fixedLength(kept) - 1), Math.min(30, max - fixedLength(kept) - 1 - currentRoom));
  return { narrow: false as const, max, icon, phase, pct, kept, currentRoom, barWidth };
}

/** The bar width a phase's line would choose on its own (0 for a phase of unknown length). */
function progressBarWidth(s: PhaseSnapshot, options: LineOptions): number {
  return s.fraction === null ? 0 : layout(s, options).barWidth;
}

/**
 * One phase as one terminal line of at most `columns - 1` visible characters: icon, phase, bar,
 * percentage, bytes, throughput, elapsed, ETA and the current tensor, dropping the least useful
 * parts first when the terminal is narrow; at 40 columns and less, just phase, bar and percentage.
 */
function formatProgressLine(s: PhaseSnapshot, options: LineOptions): string {
  const { theme } = options;
  const l = layout(s, options);
  const { max, icon, phase, pct } = l;
  const barWidth = Math.min(l.barWidth, options.barWidth ?? Number.POSITIVE_INFINITY);
  if (l.narrow) {
    const parts: Part[] = [phase, ...(s.fraction !== null && barWidth >= 3 ? [bar(s.fraction, barWidth, theme, s.finished)] : []), ...(pct ? [pct] : [])];
    return clip(parts, max);
  }
  const parts: Part[] = [icon, phase, ...(s.fraction !== null && barWidth >= 3 ? [bar(s.fraction, barWidth, theme, s.finished)] : []), ...(pct ? [pct] : []), ...l.kept];
  const used = join(parts).plain.length;
  if (l.currentRoom > 0 && max - used - 1 >= Math.min(8, s.current!.length)) {
    const room = max - used - 1;
    const name = escapeControl(s.current);
    parts.push([name.length > room ? `…${name.slice(name.length - room + 1)}` : name, theme.dim]);
  }
  return clip(parts, max);
}

/**
 * The live lines of concurrent phases, one each, at most `columns - 1` wide: their bars share one
 * width (the narrowest line's), so bars and numbers line up. `tick` turns the spinners. The TTY
 * renderer and the editor's merge view draw these.
 */
export function progressLines(snapshots: readonly PhaseSnapshot[], options: { columns: number; theme: Theme; tick: number }): string[] {
  if (snapshots.length === 0) return [];
  const { columns, theme, tick } = options;
  const phaseWidth = Math.max(...snapshots.map((s) => s.phase.length));
  const widths = snapshots.filter((s) => s.fraction !== null).map((s) => progressBarWidth(s, { columns, theme, phaseWidth, tick }));
  const barWidth = widths.length > 0 ? Math.min(...widths) : undefined;
  return snapshots.map((s) => formatProgressLine(s, { columns, theme, phaseWidth, tick, ...(barWidth === undefined ? {} : { barWidth }) }));
}

/** Safety net: never more than `max` visible characters (a wrapped line would break the redraw). */
function clip(parts: readonly Part[], max: number): string {
  const { plain, styled } = join(parts);
  return plain.length <= max ? styled : plain.slice(0, max);
}

function plainLine(s: PhaseSnapshot, started: boolean): string {
  const name = `${s.phase}:`;
  if (started && !s.finished) {
    const size = s.bytesTotal > 0 ? formatBytes(s.bytesTotal) : undefined;
    const items = s.itemsTotal ? `${s.itemsTotal} items` : undefined;
    const what = [size, items].filter(Boolean).join(", ");
    return `${name} started${what ? ` (${what})` : ""}`;
  }
  if (s.finished) {
    const rate = s.bytesPerSecond && s.bytesDone > 0 ? `, ${formatRate(s.bytesPerSecond)}` : "";
    return `${name} done, ${formatBytes(s.bytesDone)}${s.itemsDone !== null ? ` (${s.itemsDone} items)` : ""} in ${formatDuration(s.elapsedMs)}${rate}`;
  }
  const pct = s.fraction === null ? "" : `${Math.floor(s.fraction * 100)}%, `;
  const of = s.bytesTotal > 0 ? `${formatBytes(s.bytesDone)} of ${formatBytes(s.bytesTotal)}` : formatBytes(s.bytesDone);
  const rate = s.bytesPerSecond === null ? "" : `, ${formatRate(s.bytesPerSecond)}`;
  const eta = s.etaMs === null ? "" : `, ETA ${formatDuration(s.etaMs)}`;
  return `${name} ${pct}${of}${rate}${eta}${s.current ? `, ${escapeControl(s.current)}` : ""}`;
}

/** The --json progress line: the same fields for every phase and event. */
function progressJson(s: PhaseSnapshot): string {
  return JSON.stringify({ type: "progress", phase: s.phase, bytesDone: s.bytesDone, bytesTotal: s.bytesTotal, itemsDone: s.itemsDone, itemsTotal: s.itemsTotal, elapsedMs: s.elapsedMs, etaMs: s.etaMs });
}

/**
 * Draws library progress events on stderr (stdout stays data): on a TTY, one live line per
 * concurrent phase redrawn at most 10 times a second; in logs and pipes (or a terminal that
 * reports 0 columns), a line per phase at start, end and at most every 10 s; with --json,
 * JSON lines at most twice a second per phase; nothing with --quiet. State (ProgressState)
 * is kept apart from drawing.
 */
export function createProgressRenderer(io: CliIo, requested: ProgressMode, options: ProgressRendererOptions = {}): ProgressRenderer {
  const stream = io.stderr;
  const now = options.now ?? Date.now;
  const schedule = options.schedule ?? defaultSchedule;
  const theme = options.theme ?? PLAIN_THEME;
  const mode: ProgressMode = requested === "tty" && stream.columns === 0 ? "plain" : requested;
  const state = new ProgressState(now);
  const finished: PhaseSnapshot[] = [];
  const lastLine = new Map<string, number>();
  const endReported = new Set<string>();
  let drawnLines = 0;
  let lastDraw = Number.NEGATIVE_INFINITY;
  let cancelTimer: (() => void) | undefined;
  let dueAt = 0;
  let tick = 0;

  const draw = (): void => {
    cancelTimer = undefined;
    const snapshots = state.snapshots();
    if (snapshots.length === 0) return;
    let out = drawnLines > 0 ? `\r\x1b[${drawnLines}A` : "\r";
    for (const line of progressLines(snapshots, { columns: stream.columns ?? 80, theme, tick })) out += `\x1b[2K${line}\n`;
    stream.write(`${out}\x1b[J`);
    drawnLines = snapshots.length;
    lastDraw = now();
    tick++;
    // Keep spinners and elapsed times moving while something runs.
    if (snapshots.some((s) => !s.finished)) {
      dueAt = lastDraw + FRAME_MS;
      cancelTimer = schedule(draw, FRAME_MS);
    }
  };

  const requestDraw = (): void => {
    const at = now();
    if (cancelTimer) {
      // A timer held up by a busy event loop (the work runs on this thread too): draw now.
      if (at < dueAt) return;
      cancelTimer();
      cancelTimer = undefined;
    }
    const wait = lastDraw + FRAME_MS - at;
    if (wait <= 0) draw();
    else {
      dueAt = at + wait;
      cancelTimer = schedule(draw, wait);
    }
  };

  let stopped = false;
  const onProgress = (event: ProgressEvent): void => {
    if (mode === "none" || stopped) return;
    const { snapshot, started } = state.update(event);
    if (started) {
      lastLine.delete(event.phase);
      endReported.delete(event.phase);
    }
    const justFinished = snapshot.finished && !endReported.has(event.phase);
    if (justFinished) {
      endReported.add(event.phase);
      finished.push(snapshot);
    }
    if (mode === "tty") {
      requestDraw();
      return;
    }
    const at = now();
    const last = lastLine.get(event.phase);
    const interval = mode === "json" ? JSON_INTERVAL_MS : PLAIN_INTERVAL_MS;
    if (mode === "plain" && started && !snapshot.finished) {
      stream.write(`${plainLine(snapshot, true)}\n`);
      lastLine.set(event.phase, at);
      return;
    }
    if (!(started || justFinished || last === undefined || at - last >= interval)) return;
    lastLine.set(event.phase, at);
    stream.write(`${mode === "json" ? progressJson(snapshot) : plainLine(snapshot, false)}\n`);
  };

  const done = (): void => {
    cancelTimer?.();
    cancelTimer = undefined;
    if (drawnLines > 0) stream.write(`\r\x1b[${drawnLines}A\x1b[J`);
    drawnLines = 0;
    lastDraw = Number.NEGATIVE_INFINITY;
    state.dropFinished();
  };

  return {
    onProgress,
    done,
    stop() {
      stopped = true;
      done();
    },
    finishedPhases: () => finished,
  };
}
