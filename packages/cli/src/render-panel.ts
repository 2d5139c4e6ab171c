import { formatDuration } from "./format.js";
import type { PhaseSnapshot } from "./progress-state.js";
import { visibleLength, type Theme } from "./theme.js";

/** A summary row: a label and a value that may already carry colour. */
export type PanelRow = readonly [label: string, value: string];

/**
 * A command's closing summary as a titled box (ASCII corners without Unicode) no wider than the
 * terminal: a value too long for its line wraps under itself (that row loses its colours).
 */
export function renderPanel(title: string, rows: readonly PanelRow[], theme: Theme, columns = 80): string {
  const [tl, tr, bl, br, h, v] = theme.glyphs.box;
  const labelWidth = Math.max(0, ...rows.map(([l]) => l.length));
  const indent = labelWidth + 2;
  const natural = Math.max(visibleLength(title) + 2, ...rows.map(([, value]) => indent + visibleLength(value)));
  const inner = Math.max(indent + 10, visibleLength(title) + 2, Math.min(natural, Math.max(columns, 24) - 4));
  const body: string[] = [];
  for (const [label, value] of rows) {
    const head = theme.dim(label.padEnd(labelWidth));
    if (indent + visibleLength(value) <= inner) {
      body.push(`${head}  ${value}`);
      continue;
    }
    wrapValue(stripAnsi(value), inner - indent).forEach((chunk, i) => body.push(`${i === 0 ? head : " ".repeat(labelWidth)}  ${chunk}`));
  }
  const top = `${theme.dim(`${tl}${h}`)} ${title} ${theme.dim(h.repeat(Math.max(0, inner - visibleLength(title) - 1)) + tr)}`;
  const lines = body.map((b) => `${theme.dim(v)} ${b}${" ".repeat(Math.max(0, inner - visibleLength(b)))} ${theme.dim(v)}`);
  return [top, ...lines, theme.dim(`${bl}${h.repeat(inner + 2)}${br}`)].join("\n") + "\n";
}

/**
 * Lines of at most `width` characters: broken at the last space (dropped) or after the last "/"
 * when that leaves the line at least half full, else hard at the width (a long hash or name).
 */
export function wrapValue(text: string, width: number): string[] {
  const lines: string[] = [];
  let rest = text;
  while (rest.length > width) {
    const space = rest.lastIndexOf(" ", width - 1);
    const slash = rest.lastIndexOf("/", width - 1) + 1;
    const cut = Math.max(space, slash);
    if (cut >= width / 2) {
      lines.push(rest.slice(0, cut));
      rest = rest.slice(cut === space ? cut + 1 : cut);
    } else {
      lines.push(rest.slice(0, width));
      rest = rest.slice(width);
    }
  }
  lines.push(rest);
  return lines;
}

// eslint-disable-next-line no-control-regex
const stripAnsi = (text: string): string => text.replace(/\x1b\[[0-9;]*m/g, "");

/** "12.3 s (convert 8.1 s · hash 6.0 s · verify 3.2 s)": total time and each phase's own time. */
export function timeRow(totalMs: number, phases: readonly PhaseSnapshot[], theme: Theme): string {
  const parts = phases.map((p) => `${p.phase} ${formatDuration(p.elapsedMs)}`);
  return `${theme.number(formatDuration(totalMs))}${parts.length ? theme.dim(` (${parts.join(" · ")})`) : ""}`;
}

/** The `timings` object of every command's --json result: total and per-phase milliseconds. */
export function timingsJson(totalMs: number, phases: readonly PhaseSnapshot[]): { totalMs: number; phases: { phase: string; elapsedMs: number; bytes: number }[] } {
  return { totalMs, phases: phases.map((p) => ({ phase: p.phase, elapsedMs: p.elapsedMs, bytes: p.bytesDone })) };
}
