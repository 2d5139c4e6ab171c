import { basename } from "node:path";
import type { ProgressCallback } from "@stmerge/core-tensors";
import type { MethodRegistry } from "@stmerge/merge-engine";
import { Box, Text, useApp, useInput, useStdout, type Key } from "ink";
import { createElement as h, useEffect, useReducer, useRef, useState, type ReactElement } from "react";
import { formatBytes, formatDuration } from "../format.js";
import { progressLines } from "../progress-renderer.js";
import { ProgressState } from "../progress-state.js";
import { escapeControl } from "../terminal-text.js";
import { createTheme } from "../theme.js";
import {
  BLOCK_ROWS,
  blockRow,
  diffManifests,
  editorReducer,
  isDirty,
  isIncluded,
  manifestOf,
  methodName,
  outputPath,
  paramRows,
  pickerShown,
  rowsOf,
  vaePath,
  weightSum,
  type EditorAction,
  type EditorState,
  type PickerFileInfo,
} from "./editor-state.js";
import type { ListedModelFiles } from "./list-model-files.js";
import type { EditMergeResult } from "./run-edit-merge.js";
import { planLines, type EditValidation } from "./validate-edit.js";

/** What a key does: a reducer action, or one of the view's own effects. */
export type KeyEffect =
  | EditorAction
  | { readonly type: "save" }
  | { readonly type: "exit" }
  | { readonly type: "scroll"; readonly by: number }
  /** `m`: the view checks the live validation and the output file, then asks the reducer (request-merge). */
  | { readonly type: "merge-key" }
  /** Ctrl+C, `q` or Esc while a merge runs: abort it (its temp file is removed). */
  | { readonly type: "merge-abort" }
  | undefined;

/** The key map, pure (tested without a terminal); the footer and `?` list the same keys. */
export function keyEffect(s: EditorState, input: string, key: Pick<Key, "upArrow" | "downArrow" | "leftArrow" | "rightArrow" | "tab" | "shift" | "return" | "escape" | "backspace" | "delete" | "ctrl" | "pageUp" | "pageDown">): KeyEffect {
  const merging = s.merge?.status === "starting" || s.merge?.status === "running" || s.merge?.status === "cancelling";
  if (s.mode === "merge" && merging) return (key.ctrl && input === "c") || input === "q" || key.escape ? { type: "merge-abort" } : undefined;
  if (key.ctrl && input === "c") return { type: "exit" };
  switch (s.mode) {
    case "merge":
      if (key.return || key.escape) return { type: "merge-close" };
      return input === "q" ? { type: "request-quit" } : undefined;
    case "pick":
      if (key.escape) return { type: "mode", mode: "normal" };
      if (key.return) return { type: "picker-choose" };
      if (key.upArrow || key.downArrow) return { type: "picker-move", by: key.upArrow ? -1 : 1 };
      if (key.pageUp || key.pageDown) return { type: "picker-move", by: key.pageUp ? -10 : 10 };
      if (key.backspace || key.delete) return { type: "picker-backspace" };
      return input && !key.ctrl && !key.tab ? { type: "picker-filter", text: input } : undefined;
    case "confirm-merge":
      if (input === "y" || input === "Y") return { type: "confirm-merge" };
      if (key.upArrow || key.downArrow) return { type: "scroll", by: key.upArrow ? -1 : 1 };
      return input === "n" || input === "N" || key.escape || input === "q" ? { type: "mode", mode: "normal" } : undefined;
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
    a: { type: "open-picker" },
    v: { type: "paste-row" },
    e: { type: "edit-text" },
    s: { type: "request-save" },
    q: { type: "request-quit" },
    "?": { type: "mode", mode: "help" },
    d: { type: "mode", mode: "plan" },
  };
  if (input === "m") return { type: "merge-key" };
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
  "  a            add a model: pick a file in the manifest's folder (type to filter, Esc cancels)",
  "  m            merge (saves first, asks; q or Ctrl+C cancels and removes the temp file)",
  "",
  "Excluded models stay in the manifest with \"excluded\": true and are left out of the merge.",
  "Validation reads headers only.",
  "Esc or ? closes this help.",
];

const FOOTER = [
  "↑↓ Tab move  +/- weight  */_ coarse  n normalize  Space in/out  b blocks",
  "a add model  s save  m merge  q quit  d dry-run  ? help",
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
  /** The model files in the manifest's folder and subfolders (the picker's list). */
  readonly listFiles: () => Promise<ListedModelFiles>;
  /** What a listed file is (path relative to the manifest's folder). */
  readonly describeFile: (path: string) => Promise<PickerFileInfo>;
  readonly fileExists: (path: string) => boolean;
  /** Merges the manifest file as saved. */
  readonly merge: (options: { overwrite: boolean; signal: AbortSignal; onProgress: ProgressCallback }) => Promise<EditMergeResult>;
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
  // The manifest (as JSON) the shown validation is for: a merge starts only from a current one.
  const validated = useRef<{ key: string; v: EditValidation } | undefined>(undefined);
  useEffect(() => {
    const mine = ++generation.current;
    const timer = setTimeout(() => {
      void props.validate(state).then((v) => {
        if (mine !== generation.current) return;
        validated.current = { key: manifestKey, v };
        setValidation(v);
      });
    }, 100);
    return () => clearTimeout(timer);
  }, [manifestKey]);

  // The picker: list the folder when it opens, then read each file's header in the background.
  const picking = state.mode === "pick";
  const described = useRef(new Map<string, PickerFileInfo>());
  useEffect(() => {
    if (!picking) return;
    let live = true;
    void props.listFiles().then(async (listed) => {
      if (!live) return;
      dispatch({ type: "picker-files", files: listed.files, truncated: listed.truncated });
      // Files read when the picker was open before are known at once; the rest are read in order.
      for (const path of listed.files) {
        const known = described.current.get(path);
        if (known) dispatch({ type: "picker-info", path, info: known });
      }
      for (const path of listed.files) {
        if (described.current.has(path)) continue;
        const info = await props.describeFile(path).catch((error: Error): PickerFileInfo => ({ kind: "unreadable", label: error.message }));
        if (!live) return;
        described.current.set(path, info);
        dispatch({ type: "picker-info", path, info });
      }
    });
    return () => {
      live = false;
    };
  }, [picking]);

  // The merge: started by the reducer's "starting" (after the confirm screen); progress is kept
  // in a ProgressState and drawn ten times a second; Ctrl+C / q aborts through the controller.
  const mergeControl = useRef<AbortController | undefined>(undefined);
  const progress = useRef<ProgressState | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const starting = state.merge?.status === "starting";
  useEffect(() => {
    if (!starting || state.merge?.status !== "starting") return;
    const { overwrite } = state.merge;
    const controller = new AbortController();
    mergeControl.current = controller;
    progress.current = new ProgressState();
    const timer = setInterval(() => setTick((t) => t + 1), 100);
    void (async () => {
      try {
        if (isDirty(current.current)) {
          const manifest = manifestOf(current.current);
          await props.save(manifest).catch((error: Error) => {
            throw new Error(`not saved, not merged: ${error.message}`);
          });
          savedOnce.current = true;
          dispatch({ type: "saved", manifest });
        }
        if (controller.signal.aborted) throw new Error("merge cancelled; no output written");
        dispatch({ type: "merge-running" });
        const r = await props.merge({ overwrite, signal: controller.signal, onProgress: (e) => progress.current?.update(e) });
        dispatch({ type: "merge-finished", ...r });
      } catch (error) {
        dispatch({ type: "merge-failed", error: (error as Error).message, cancelled: controller.signal.aborted });
      } finally {
        clearInterval(timer);
        mergeControl.current = undefined;
      }
    })();
  }, [starting]);
  useEffect(() => () => mergeControl.current?.abort(), []);

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
    if (effect.type === "merge-abort") {
      mergeControl.current?.abort();
      dispatch({ type: "merge-cancel" });
      return editorReducer(state, { type: "merge-cancel" }, registry);
    }
    if (effect.type === "merge-key") {
      const shown = validated.current;
      const key = JSON.stringify(manifestOf(state));
      const v = shown?.key === key ? shown.v : undefined;
      const problem = !v ? "the manifest is still being validated; press m again in a moment" : (state.paramError ?? (v.ok ? undefined : (v.problem ?? "invalid")));
      const action: EditorAction = { type: "request-merge", problem, outputExists: v?.outputPath !== undefined && props.fileExists(v.outputPath) };
      setScroll(0);
      dispatch(action);
      return editorReducer(state, action, registry);
    }
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
    // A chunk's own flags describe the chunk, not each key in it: Enter and Backspace are read per key.
    const keyOf = (k: string): Key => (keys.length === 1 ? key : { ...key, return: k === "\r", backspace: k === "\b", delete: k === "\u007f" });
    for (const k of keys) state = handle(state, k, keyOf(k));
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
  if (state.mode === "confirm-merge") {
    const changes = diffManifests(state.saved, manifestOf(state));
    const output = escapeControl(validation?.outputPath ?? outputPath(state));
    return scrolled(
      [
        `merge into ${output}?`,
        "",
        ...(changes.length ? [`The manifest is saved first (${changes.length} change(s)):`, ...changes.map((c) => `  ${escapeControl(c.path)}: ${short(c.before)} ${g.arrow} ${short(c.after)}`), ""] : []),
        ...(state.mergeOverwrite ? [`The output exists and will be replaced.`] : []),
      ],
      ["y merge  n cancel  ↑↓ scroll"],
    );
  }
  if (state.mode === "confirm-quit") return screen([line("q1", [{ text: "Unsaved changes. Quit without saving? ", color: "yellow", bold: true }, { text: "y quit  n back" }])], FOOTER);

  const rowList = rowsOf(state, registry);
  const focused = rowList[state.row];
  const isFocus = (pred: (r: NonNullable<typeof focused>) => boolean) => focused !== undefined && pred(focused);
  const mark = (on: boolean): Seg => ({ text: on ? `${g.focus} ` : "  ", color: "cyan", bold: true });

  // mark 2, index 3, in 4, arch 11, precision 5, weight 7, blk 4, status 12.
  const pathWidth = Math.min(90, Math.max(12, columns - 48));
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
      { text: `${isIncluded(m) ? g.on : g.off} `, ...(isIncluded(m) ? {} : { dim: true }) },
      { text: shown, ...(isIncluded(m) ? {} : { dim: true }) },
      { text: ` ${arch}` , dim: true },
      // As scan (or the picker) recorded it from the header.
      { text: (m.entry.precision_detected && m.entry.precision_detected !== "unknown" ? m.entry.precision_detected : "").padEnd(5), dim: true },
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
  if (state.mode === "pick" && state.picker) {
    const p = state.picker;
    const shown = pickerShown(state);
    const footer = ["↑↓ move  Enter add  type to filter  Esc cancel", ""];
    const room = Math.max(1, rows - 1 - footer.length - 2 - (state.message ? 1 : 0));
    const first = Math.max(0, Math.min(p.cursor - Math.floor(room / 2), shown.length - room));
    const width = Math.max(12, columns - 32);
    const items = shown.slice(first, first + room).map((f, k) => {
      const focus = first + k === p.cursor;
      const path = escapeControl(f.path);
      const tag: Seg =
        !f.info ? { text: "…", dim: true }
        : f.info.kind === "lora" ? { text: "LoRA (not a model)", color: "yellow" }
        : f.info.kind === "vae" ? { text: "VAE (not a model)", color: "yellow" }
        : f.info.kind === "unreadable" ? { text: `unreadable: ${escapeControl(f.info.label)}`, color: "red" }
        : { text: `${escapeControl(f.info.label)} ${f.info.precision ?? ""}`, dim: true };
      const inManifest = state.models.some((m) => m.entry.path === f.path);
      return line(`pk${first + k}`, [mark(focus), { text: (path.length > width ? `…${path.slice(path.length - width + 1)}` : path.padEnd(width)), inverse: focus, bold: focus }, { text: " " }, tag, ...(inManifest ? [{ text: " (in manifest)", dim: true }] : [])]);
    });
    return screen(
      [
        line("pt", [{ text: "add a model from ", bold: true }, { text: escapeControl(folder || "./"), color: "cyan" }]),
        line("pf", [{ text: "filter ", dim: true }, { text: `${escapeControl(p.filter)}_` }, { text: p.files ? `   ${shown.length} of ${p.files.length} files${p.truncated ? " (listing stopped at its limit)" : ""}` : "   listing…", dim: true }]),
        ...items,
        ...(state.message ? [line("msg", [{ text: escapeControl(state.message), color: "yellow" }])] : []),
      ],
      footer,
    );
  }

  if (state.mode === "merge" && state.merge) {
    const m = state.merge;
    const theme = createTheme({ color: false, unicode });
    const body: ReactElement[] = [line("mt", [{ text: "merge ", bold: true }, { text: escapeControl(m.status === "done" ? m.output : (validation?.outputPath ?? outputPath(state))), color: "cyan" }]), line("mb", [{ text: "" }])];
    const snapshots = progress.current?.snapshots() ?? [];
    progressLines(snapshots, { columns: Math.max(20, columns - 2), theme, tick }).forEach((l, i) => body.push(line(`pl${i}`, [{ text: `  ${l}` }])));
    body.push(line("ms", [{ text: "" }]));
    let footer = ["q / Ctrl+C cancel (the temp file is removed)", ""];
    if (m.status === "starting") body.push(line("st", [{ text: state.message === "saved" ? "saved; starting…" : "starting…", dim: true }]));
    else if (m.status === "cancelling") body.push(line("st", [{ text: "cancelling…", color: "yellow" }]));
    else if (m.status === "done") {
      body.push(line("st", [{ text: `${g.ok} merged`, color: "green", bold: true }]));
      // The full output path, wrapped (a cut path could not be copied); the rest fits one line.
      wordWrap(escapeControl(m.output), Math.max(10, columns - 11)).forEach((chunk, i) => body.push(line(`ro${i}`, [{ text: `  ${(i === 0 ? "output" : "").padEnd(8)}`, dim: true }, { text: chunk }])));
      for (const [k, label, value] of [["h", "sha256", m.sha256 ?? "(not hashed)"], ["z", "size", formatBytes(m.bytes)], ["t", "time", formatDuration(m.ms)]] as const) body.push(line(`r${k}`, [{ text: `  ${label.padEnd(8)}`, dim: true }, { text: value }]));
      footer = ["Enter / Esc back to the editor  q quit", ""];
    } else if (m.status === "failed" || m.status === "cancelled") {
      body.push(...wrapped("err", m.status === "cancelled" && !m.error.includes("cancelled") ? `merge cancelled; no output written (${m.error})` : m.error, { color: m.status === "cancelled" ? "yellow" : "red" }, 4));
      footer = ["Enter / Esc back to the editor  q quit", ""];
    }
    return screen(body, footer);
  }

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
  const columnsHeader = line("mh", [{ text: `     #  in  ${"model".padEnd(pathWidth)} ${"arch".padEnd(10)} ${"prec".padEnd(4)} weight${state.models.length > room ? `  (${first + 1}–${first + visibleModels.length} of ${state.models.length})` : ""}`, dim: true }]);
  return screen([columnsHeader, ...visibleModels, ...rest], state.mode === "text" ? ["type the path  Enter keep  Esc cancel", ""] : FOOTER);
}
