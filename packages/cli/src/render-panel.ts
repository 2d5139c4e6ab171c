import { formatDuration } from "./format.js";
import type { PhaseSnapshot } from "./progress-state.js";
import { visibleLength, type Theme } from "./theme.js";

/** A summary row: a label and a value that may already carry colour. */
export type PanelRow = readonly [label: string, value: string];

/**
 * A command's closing summary as a titled box (ASCII corners without Unicode). When a value is
 * too wide for the terminal the right edge is left off rather than wrapping the box apart.
 */
export function renderPanel(title: string, rows: readonly PanelRow[], theme: Theme, columns = 80): string {
  const [tl, tr, bl, br, h, v] = theme.glyphs.box;
  const labelWidth = Math.max(0, ...rows.map(([l]) => l.length));
  const body = rows.map(([l, value]) => `${theme.dim(l.padEnd(labelWidth))}  ${value}`);
  const inner = Math.max(visibleLength(title) + 2, ...body.map(visibleLength));
  const closed = inner + 4 <= Math.max(columns, 20);
  const width = closed ? inner : Math.max(visibleLength(title) + 2, Math.min(inner, Math.max(columns, 20) - 4));
  const top = `${tl}${h} ${title} ${h.repeat(Math.max(0, width - visibleLength(title) - 1))}${tr}`;
  const lines = body.map((b) => (closed ? `${v} ${b}${" ".repeat(width - visibleLength(b))} ${v}` : `${v} ${b}`));
  const bottom = `${bl}${h.repeat(width + 2)}${br}`;
  return [theme.dim(top.slice(0, 2)) + top.slice(2, 3 + title.length) + theme.dim(top.slice(3 + title.length)), ...lines.map((l) => (closed ? theme.dim(v) + l.slice(v.length, -v.length) + theme.dim(v) : theme.dim(v) + l.slice(v.length))), theme.dim(bottom)].join("\n") + "\n";
}

/** "12.3 s (convert 8.1 s · hash 6.0 s · verify 3.2 s)": total time and each phase's own time. */
export function timeRow(totalMs: number, phases: readonly PhaseSnapshot[], theme: Theme): string {
  const parts = phases.map((p) => `${p.phase} ${formatDuration(p.elapsedMs)}`);
  return `${theme.number(formatDuration(totalMs))}${parts.length ? theme.dim(` (${parts.join(" · ")})`) : ""}`;
}

/** The `timings` object of every command's --json result: total and per-phase milliseconds. */
export function timingsJson(totalMs: number, phases: readonly PhaseSnapshot[]): { totalMs: number; phases: { phase: string; elapsedMs: number; bytes: number }[] } {
  return { totalMs, phases: phases.map((p) => ({ phase: p.phase, elapsedMs: p.elapsedMs, bytes: p.bytesDone })) };
}
