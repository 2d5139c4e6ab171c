import { basename } from "node:path";
import type { MethodRegistry } from "@stmerge/merge-engine";
import { Box, Text, useApp, useInput, useStdout, type Key } from "ink";
import { createElement as h, useEffect, useReducer, useRef, useState, type ReactElement } from "react";
import { escapeControl } from "../terminal-text.js";
import {
  BLOCK_ROWS,
  blockRow,
  diffManifests,
  editorReducer,
  isDirty,
  manifestOf,
  methodName,
  outputPath,
  paramRows,
  rowsOf,
  vaePath,
  weightSum,
  type EditorAction,
  type EditorState,
} from "./editor-state.js";
import { planLines, type EditValidation } from "./validate-edit.js";

/** What a key does: a reducer action, or one of the view's own effects. */
export type KeyEffect = EditorAction | { readonly type: "save" } | { readonly type: "exit" } | { readonly type: "scroll"; readonly by: number } | undefined;

/** The key map, pure (tested without a terminal); the footer and `?` list the same keys. */
export function keyEffect(s: EditorState, input: string, key: Pick<Key, "upArrow" | "downArrow" | "leftArrow" | "rightArrow" | "tab" | "shift" | "return" | "escape" | "backspace" | "delete" | "ctrl" | "pageUp" | "pageDown">): KeyEffect {
  if (key.ctrl && input === "c") return { type: "exit" };
  switch (s.mode) {
    case "text":
      if (key.return) return { type: "text-commit" };
      if (key.escape) return { type: "mode", mode: "normal" };
      if (key.backspace || key.delete) return { type: "text-backspace" };
      return input && !key.ctrl ? { type: "text-input", text: input } : undefined;
    case "confirm-save":
      if (input === "y" || input === "Y") return { type: "save" };
      return input === "n" || input === "N" || key.escape || input === "q" ? { type: "mode", mode: "normal" } : undefined;
    case "confirm-quit":
      if (input === "y" || input === "Y") return { type: "exit" };
      return input === "n" || input === "N" || key.escape ? { type: "mode", mode: "normal" } : undefined;
    case "help":
    case "plan":
      if (key.upArrow || key.pageUp) return { type: "scroll", by: key.pageUp ? -10 : -1 };
      if (key.downArrow || key.pageDown) return { type: "scroll", by: key.pageDown ? 10 : 1 };
      return key.escape || input === "q" || input === "?" || input === "d" ? { type: "mode", mode: "normal" } : undefined;
    default:
  }
  if (key.upArrow) return { type: "move", dy: -1 };
  if (key.downArrow) return { type: "move", dy: 1 };
  if (key.leftArrow) return { type: "move", dx: -1 };
  if (key.rightArrow) return { type: "move", dx: 1 };
  if (key.tab) return { type: "next-section", back: key.shift };
  if (key.return) return { type: "edit-text" };
  if (key.delete || key.backspace) return { type: "remove" };
  const map: Readonly<Record<string, EditorAction>> = {
    "+": { type: "adjust", sign: 1, coarse: false },
    "=": { type: "adjust", sign: 1, coarse: false },
    "-": { type: "adjust", sign: -1, coarse: false },
    "*": { type: "adjust", sign: 1, coarse: true },
    _: { type: "adjust", sign: -1, coarse: true },
    n: { type: "normalize" },
    " ": { type: "toggle-include" },
    i: { type: "toggle-include" },
    "<": { type: "reorder", by: -1 },
    ">": { type: "reorder", by: 1 },
    x: { type: "remove" },
    b: { type: "toggle-blocks" },
    f: { type: "preset", preset: "flat" },
    r: { type: "preset", preset: "ramp-in" },
    R: { type: "preset", preset: "ramp-out" },
    c: { type: "copy-row" },
    v: { type: "paste-row" },
    e: { type: "edit-text" },
    s: { type: "request-save" },
    q: { type: "request-quit" },
    "?": { type: "mode", mode: "help" },
    d: { type: "mode", mode: "plan" },
  };
  return map[input];
}

const HELP_LINES = [
  "stmerge edit: keys",
  "  ↑ ↓          move between rows          Tab / Shift+Tab  next / previous section",
  "  ← →          move in the block grid     Enter / e        edit the VAE or output path",
  "  + -          change the focused value by 0.01 (methods, precision: cycle)",
  "  * _          change it by 0.1 (coarse)  n                normalize the weights to sum 1",
  "  Space / i    include / exclude a model  < >              move a model up / down",
  "  x / Del      remove a model (on the VAE row: clear it)",
  "  b            add / drop a block row     f r R            preset: flat, ramp in, ramp out",
  "  c v          copy / paste a block row   d                dry-run plan",
  "  s            save (shows the diff; y confirms)   q  quit (asks with unsaved changes)",
  "",
  "Excluded models are left out of the saved manifest. Validation reads headers only.",
  "Esc or ? closes this help.",
];

const FOOTER = [
  "↑↓ Tab move  +/- weight  */_ coarse  n normalize  Space in/out  b blocks",
  "s save  q quit  d dry-run  ? help",
];

const num = (v: unknown) => (typeof v === "number" ? v.toFixed(2) : String(v));
const short = (v: unknown) => {
  const text = v === undefined ? "(none)" : escapeControl(JSON.stringify(v));
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
};

/** Greedy word wrap; a word longer than the width is cut. */
function wordWrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let current = "";
  for (const word of text.split(" ")) {
    const candidate = current ? `${current} ${word}` : word;
    if (candidate.length <= width) current = candidate;
    else {
      if (current) lines.push(current);
      let rest = word;
      while (rest.length > width) {
        lines.push(rest.slice(0, width));
        rest = rest.slice(width);
      }
      current = rest;
    }
  }
  return [...lines, current];
}

export interface EditorViewProps {
  readonly initial: EditorState;
  readonly registry: MethodRegistry;
  readonly validate: (s: EditorState) => Promise<EditValidation>;
  readonly save: (manifest: Record<string, unknown>) => Promise<void>;
  readonly color: boolean;
  readonly unicode: boolean;
  /** Called once when the editor ends, with whether the manifest was saved at least once. */
  readonly onExit?: (result: { saved: boolean }) => void;
}

function useSize(): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const read = () => ({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [size, setSize] = useState(read);
  useEffect(() => {
    // ink 6.8 redraws on resize, but useStdout is not reactive: subscribe ourselves.
    const onResize = () => setSize(read());
    stdout.on("resize", onResize);
    return () => {
      stdout.off("resize", onResize);
    };
  }, [stdout]);
  return size;
}

interface Seg {
  readonly text: string;
  readonly color?: string;
  readonly bold?: boolean;
  readonly dim?: boolean;
  readonly inverse?: boolean;
}

export function EditorView(props: EditorViewProps): ReactElement {
  const { registry, color, unicode } = props;
  const [state, dispatch] = useReducer((s: EditorState, a: EditorAction) => editorReducer(s, a, registry), props.initial);
  const [validation, setValidation] = useState<EditValidation | undefined>(undefined);
  const [scroll, setScroll] = useState(0);
  const savedOnce = useRef(false);
  const { exit } = useApp();
  const { columns, rows } = useSize();
  const g = unicode ? { focus: "›", ok: "✓", bad: "✗", arrow: "→", on: "[x]", off: "[ ]" } : { focus: ">", ok: "ok", bad: "x", arrow: "->", on: "[x]", off: "[ ]" };

  // Live validation of the manifest as edited (headers only), newest edit wins.
  const manifestKey = JSON.stringify(manifestOf(state));
  const generation = useRef(0);
  useEffect(() => {
    const mine = ++generation.current;
    const timer = setTimeout(() => {
      void props.validate(state).then((v) => {
        if (mine === generation.current) setValidation(v);
      });
    }, 100);
    return () => clearTimeout(timer);
  }, [manifestKey]);

  useEffect(() => {
    if (state.mode === "quit") {
      props.onExit?.({ saved: savedOnce.current });
      exit();
    }
  }, [state.mode]);

  // useInput may keep an earlier render's handler: read the current state through a ref.
  const current = useRef(state);
  current.current = state;
  const handle = (state: EditorState, input: string, key: Key): EditorState => {
    const effect = keyEffect(state, input, key);
    if (!effect) return state;
    if (effect.type === "exit") {
      dispatch({ type: "mode", mode: "quit" });
      return { ...state, mode: "quit" };
    }
    if (effect.type === "scroll") {
      setScroll((x) => Math.max(0, x + effect.by));
      return state;
    }
    if (effect.type === "mode") setScroll(0);
    if (effect.type === "save") {
      const manifest = manifestOf(state);
      props.save(manifest).then(
        () => {
          savedOnce.current = true;
          dispatch({ type: "saved", manifest });
        },
        (error: Error) => {
          dispatch({ type: "mode", mode: "normal" });
          dispatch({ type: "message", text: `not saved: ${error.message}` });
        },
      );
      return state;
    }
    dispatch(effect);
    return editorReducer(state, effect, registry);
  };
  useInput((input, key) => {
    // Keys typed faster than a frame (or pasted) arrive as one string: each is one key, except in a text field.
    const keys = input.length > 1 && current.current.mode !== "text" ? [...input] : [input];
    let state = current.current;
    for (const k of keys) state = handle(state, k, key);
  });

  const paint = (seg: Seg): Seg => (color ? seg : { text: seg.text, ...(seg.inverse ? { inverse: true } : {}), ...(seg.bold ? { bold: true } : {}) });
  const line = (k: string, segs: readonly Seg[]) =>
    h(Text, { key: k, wrap: "truncate-end" }, ...segs.map((s, i) => {
      const p = paint(s);
      return h(Text, { key: i, ...(p.color ? { color: p.color } : {}), ...(p.bold ? { bold: true } : {}), ...(p.dim ? { dimColor: true } : {}), ...(p.inverse ? { inverse: true } : {}) }, p.text);
    }));

  const dirty = isDirty(state);
  const header = line("header", [
    { text: "stmerge edit ", bold: true },
    { text: escapeControl(basename(state.file)), color: "cyan" },
    { text: dirty ? "  * modified" : "  saved", ...(dirty ? { color: "yellow" } : { dim: true }) },
  ]);
  const screen = (body: ReactElement[], footer: readonly string[]) =>
    h(Box, { flexDirection: "column", width: columns, height: rows }, header, ...body.slice(0, Math.max(0, rows - 1 - footer.length)), h(Box, { flexGrow: 1 }), ...footer.map((f, i) => line(`footer${i}`, [{ text: f, dim: true }])));

  const scrolled = (lines: readonly string[], footer: readonly string[]) => {
    const room = Math.max(1, rows - 1 - footer.length);
    const top = Math.min(scroll, Math.max(0, lines.length - room));
    return screen(lines.slice(top, top + room).map((l, i) => line(`l${i}`, [{ text: l }])), footer);
  };

  if (state.mode === "help") return scrolled(HELP_LINES, ["Esc close"]);
  if (state.mode === "plan") return scrolled(validation ? ["dry-run plan (stmerge merge --dry-run)", "", ...planLines(validation)] : ["validating…"], ["↑↓ scroll  Esc close"]);
  if (state.mode === "confirm-save") {
    const changes = diffManifests(state.saved, manifestOf(state));
    return scrolled([`save ${escapeControl(state.file)}?`, "", ...changes.map((c) => `  ${escapeControl(c.path)}: ${short(c.before)} ${g.arrow} ${short(c.after)}`), "", `${changes.length} change(s)`], ["y save  n cancel  ↑↓ scroll"]);
  }
  if (state.mode === "confirm-quit") return screen([line("q1", [{ text: "Unsaved changes. Quit without saving? ", color: "yellow", bold: true }, { text: "y quit  n back" }])], FOOTER);

  const rowList = rowsOf(state, registry);
  const focused = rowList[state.row];
  const isFocus = (pred: (r: NonNullable<typeof focused>) => boolean) => focused !== undefined && pred(focused);
  const mark = (on: boolean): Seg => ({ text: on ? `${g.focus} ` : "  ", color: "cyan", bold: true });

  // mark 2, index 3, in 4, arch 11, weight 7, blk 4, status 12.
  const pathWidth = Math.min(90, Math.max(12, columns - 43));
  const modelLines = state.models.map((m, i) => {
    const focus = isFocus((r) => r.kind === "model" && r.model === i);
    const missing = validation?.missing.includes(i);
    const problem = validation?.problemModel === i;
    const path = escapeControl(String(m.entry.path));
    const shown = path.length > pathWidth ? `…${path.slice(path.length - pathWidth + 1)}` : path.padEnd(pathWidth);
    const arch = (validation?.architectures[i] ?? (typeof m.entry.architecture === "string" ? escapeControl(m.entry.architecture) : "?")).slice(0, 9).padEnd(10);
    return line(`m${i}`, [
      mark(focus),
      { text: `${String(i).padStart(2)} ` },
      { text: `${m.included ? g.on : g.off} `, ...(m.included ? {} : { dim: true }) },
      { text: shown, ...(m.included ? {} : { dim: true }) },
      { text: ` ${arch}` , dim: true },
      { text: num(m.entry.weight).padStart(7), bold: focus, inverse: focus },
      { text: m.entry.block_weights !== undefined ? " blk" : "    ", dim: true },
      ...(missing ? [{ text: ` ${g.bad} missing`, color: "red" }] : problem ? [{ text: ` ${g.bad} see below`, color: "red" }] : []),
    ]);
  });
  // Keep the focused model visible when the list is longer than the screen allows.
  const params = paramRows(state, registry);
  const grid = blockRow(state, state.selected);
  const names = BLOCK_ROWS[state.family];
  const perLine = Math.max(1, Math.floor((columns - 2) / 6));
  const gridLines: ReactElement[] = [];
  if (grid) {
    const onGrid = isFocus((r) => r.kind === "blocks");
    gridLines.push(line("gh", [mark(onGrid), { text: `blocks of model ${state.selected} (${state.family === "sdxl" ? "SDXL, 20" : "SD1.x, 26"}; f flat, r/R ramp, c/v copy/paste)`, dim: !onGrid }]));
    for (let start = 0; start < names.length; start += perLine) {
      const idx = names.slice(start, start + perLine).map((_, k) => start + k);
      gridLines.push(line(`gn${start}`, [{ text: "  " }, ...idx.map((c) => ({ text: names[c]!.padEnd(6), dim: true }))]));
      gridLines.push(line(`gv${start}`, [{ text: "  " }, ...idx.map((c) => ({ text: num(grid[c]).padEnd(6), ...(onGrid && state.col === c ? { inverse: true, bold: true } : {}) }))]));
    }
  }
  const field = (k: string, label: string, value: string, focus: boolean): ReactElement => line(k, [mark(focus), { text: `${label} `.padEnd(12), dim: true }, { text: value, inverse: focus, bold: focus }]);
  // Messages name files by absolute path; inside the editor the manifest's folder is implied.
  const folder = state.file.slice(0, state.file.length - basename(state.file).length);
  const wrapped = (k: string, text: string, seg: Omit<Seg, "text">, lines = 3): ReactElement[] => {
    const width = Math.max(10, columns - 2);
    const chunks = wordWrap(escapeControl(text.split(folder).join("")), width);
    return chunks.slice(0, lines).map((c, i) => line(`${k}${i}`, [{ text: i === 0 ? `${g.bad} ` : "  ", ...seg }, { text: c, ...seg }]));
  };
  const v = validation;
  const status: ReactElement[] = [
    ...(!v ? [line("st", [{ text: "validating…", dim: true }])]
    : v.ok ? [line("st", [{ text: `${g.ok} `, color: "green" }, { text: `valid: ${v.plan!.architecture.label}, ${v.plan!.models.length} models, ${v.plan!.entries.length} tensors${v.warnings.length ? ` · ${v.warnings.length} warning(s): ${escapeControl(v.warnings[0]!)}` : ""}` }])]
    : wrapped("st", v.problem ?? "invalid", { color: "red" })),
    ...(state.paramError ? wrapped("pe", state.paramError, { color: "red" }, 2) : []),
    ...(state.message ? [line("msg", [{ text: escapeControl(state.message), color: "yellow" }])] : []),
  ];
  const rest: ReactElement[] = [
    line("sum", [{ text: `   sum of included weights ${weightSum(state).toFixed(2)}`, dim: true }, ...(Math.abs(weightSum(state) - 1) > 1e-6 ? [{ text: "  (n normalizes)", color: "yellow" }] : [])]),
    field("method", "method", `${escapeControl(methodName(state))}  (${state.methods.length} methods, +/- to change)`, isFocus((r) => r.kind === "method")),
    ...params.map((p) => field(`p-${p.name}`, `  ${p.name}`, `${escapeControl(JSON.stringify(p.value))}${p.written ? "" : " (default)"}`, isFocus((r) => r.kind === "param" && r.name === p.name))),
    ...gridLines,
    field("vae", "vae", state.mode === "text" && focused?.kind === "vae" ? `${escapeControl(state.text)}_` : escapeControl(vaePath(state) || "(none)"), isFocus((r) => r.kind === "vae")),
    field("output", "output", state.mode === "text" && focused?.kind === "output" ? `${escapeControl(state.text)}_` : escapeControl(outputPath(state) || "merged_output.safetensors (default)"), isFocus((r) => r.kind === "output")),
    field("precision", "precision", String(state.top.output_precision ?? "match"), isFocus((r) => r.kind === "precision")),
    ...status,
  ];
  const room = Math.max(1, rows - 1 - FOOTER.length - 1 - rest.length);
  const first = Math.max(0, Math.min(state.selected - Math.floor(room / 2), state.models.length - room));
  const visibleModels = modelLines.slice(first, first + room);
  const columnsHeader = line("mh", [{ text: `     #  in  ${"model".padEnd(pathWidth)} ${"arch".padEnd(10)} weight${state.models.length > room ? `  (${first + 1}–${first + visibleModels.length} of ${state.models.length})` : ""}`, dim: true }]);
  return screen([columnsHeader, ...visibleModels, ...rest], state.mode === "text" ? ["type the path  Enter keep  Esc cancel", ""] : FOOTER);
}
