import { architectureOfLabel, BLOCK_MAPS, checkParamNames, ManifestSchema, methodParamNames, type AnyMergeMethod, type ManifestInput, type MethodRegistry } from "@stmerge/merge-engine";

/**
 * The state of `stmerge edit`: a pure reducer over the manifest's JSON. The view only maps keys
 * to actions and draws; saving and validation (I/O) happen outside and come back as actions.
 * The manifest object keeps every field the editor does not know (hashes, `$schema`, legacy
 * companions) exactly as read, so a save changes only what the user changed. Its types are
 * merge-engine's manifest input types: the editor holds the file's own form (a block-weight
 * list stays a list, an excluded model keeps `excluded: true`), never a re-declared copy.
 */

export type BlockFamily = "sd1" | "sdxl";
/** SuperMerger block order without VAE: SD1 26 values, SDXL 20 (merge-engine's block maps). */
export const BLOCK_ROWS: Readonly<Record<BlockFamily, readonly string[]>> = {
  sd1: BLOCK_MAPS.sd1!.blocks.filter((b) => b !== "VAE"),
  sdxl: BLOCK_MAPS.sdxl!.blocks.filter((b) => b !== "VAE"),
};
const PRECISIONS = ManifestSchema.shape.output_precision.unwrap().options;
const FINE_STEP = 0.01;
const COARSE_STEP = 0.1;

type Json = Record<string, unknown>;
/** One `models` entry of a manifest, as written (merge-engine's schema input). */
type ModelEntry = ManifestInput["models"][number];
type BlockWeights = NonNullable<ModelEntry["block_weights"]>;
/** Every top-level field of a manifest other than `models`. */
type ManifestTop = Omit<ManifestInput, "models">;

interface EditorModel {
  /** The model's manifest entry as read, with `weight`, `block_weights` and `excluded` as edited. */
  readonly entry: ModelEntry;
}

/** Excluded models stay in the saved manifest with `excluded: true` (merge-engine leaves them out of the merge). */
export const isIncluded = (m: EditorModel): boolean => m.entry.excluded !== true;

/** A file the model picker lists, with what its header says once read. */
interface PickerFile {
  /** Path relative to the manifest's folder, `/`-separated (as manifests write paths). */
  readonly path: string;
  readonly info?: PickerFileInfo;
}

export interface PickerFileInfo {
  /** A checkpoint can be merged; LoRAs and VAEs are marked and not added as models. */
  readonly kind: "checkpoint" | "lora" | "vae" | "unreadable";
  /** Architecture label (SD1.5, SDXL, …) or, when unreadable, the reason. */
  readonly label: string;
  readonly precision?: "fp16" | "fp32" | "bf16" | "unknown";
}

interface Picker {
  /** Undefined while the folder is being listed. */
  readonly files: readonly PickerFile[] | undefined;
  /** The listing stopped at its limit. */
  readonly truncated: boolean;
  /** Typed text: only paths containing it are shown. */
  readonly filter: string;
  /** Position in the shown (filtered) list. */
  readonly cursor: number;
}

/** The merge started from the editor: its lifecycle (progress itself is drawn from the view's ProgressState). */
type MergeRun =
  | { readonly status: "starting" | "running" | "cancelling"; readonly overwrite: boolean }
  | { readonly status: "done"; readonly output: string; readonly sha256: string | undefined; readonly ms: number; readonly bytes: number }
  | { readonly status: "failed" | "cancelled"; readonly error: string };

export type Row =
  | { readonly kind: "model"; readonly model: number }
  | { readonly kind: "method" }
  | { readonly kind: "param"; readonly name: string }
  | { readonly kind: "blocks" }
  | { readonly kind: "vae" }
  | { readonly kind: "output" }
  | { readonly kind: "precision" };

type Mode = "normal" | "help" | "plan" | "confirm-save" | "confirm-quit" | "text" | "pick" | "confirm-merge" | "merge" | "quit";

export interface EditorState {
  /** Absolute path of the manifest being edited. */
  readonly file: string;
  /** The manifest as last read or saved (the diff's "before"). */
  readonly saved: ManifestInput;
  /** Top-level fields of the manifest other than `models`, as edited. */
  readonly top: ManifestTop;
  readonly models: readonly EditorModel[];
  readonly methods: readonly string[];
  readonly row: number;
  /** Column in the block grid. */
  readonly col: number;
  /** The model whose block row the grid shows (the last model row focused). */
  readonly selected: number;
  readonly family: BlockFamily;
  readonly mode: Mode;
  /** Text being typed for the VAE or output field. */
  readonly text: string;
  readonly clipboard: readonly number[] | undefined;
  /** One-line message of the last action (a refused edit, "saved"). */
  readonly message: string | undefined;
  /** Problem of the method parameters against the method's schema, shown inline. */
  readonly paramError: string | undefined;
  readonly picker: Picker | undefined;
  /** The confirm-merge screen also replaces an existing output (the editor's --overwrite, asked). */
  readonly mergeOverwrite: boolean;
  readonly merge: MergeRun | undefined;
}

export type EditorAction =
  | { readonly type: "move"; readonly dy?: number; readonly dx?: number }
  | { readonly type: "next-section"; readonly back?: boolean }
  | { readonly type: "adjust"; readonly sign: 1 | -1; readonly coarse: boolean }
  | { readonly type: "normalize" }
  | { readonly type: "toggle-include" }
  | { readonly type: "reorder"; readonly by: 1 | -1 }
  | { readonly type: "remove" }
  | { readonly type: "toggle-blocks" }
  | { readonly type: "preset"; readonly preset: "flat" | "ramp-in" | "ramp-out" }
  | { readonly type: "copy-row" }
  | { readonly type: "paste-row" }
  | { readonly type: "edit-text" }
  | { readonly type: "text-input"; readonly text: string }
  | { readonly type: "text-backspace" }
  | { readonly type: "text-commit" }
  | { readonly type: "clear" }
  | { readonly type: "mode"; readonly mode: Mode }
  | { readonly type: "request-save" }
  | { readonly type: "request-quit" }
  | { readonly type: "saved"; readonly manifest: ManifestInput }
  | { readonly type: "message"; readonly text: string | undefined }
  | { readonly type: "open-picker" }
  | { readonly type: "picker-files"; readonly files: readonly string[]; readonly truncated: boolean }
  | { readonly type: "picker-info"; readonly path: string; readonly info: PickerFileInfo }
  | { readonly type: "picker-move"; readonly by: number }
  | { readonly type: "picker-filter"; readonly text: string }
  | { readonly type: "picker-backspace" }
  | { readonly type: "picker-choose" }
  /** `problem`: the live validation's, when the manifest as edited cannot merge; `outputExists`: the output file is there. */
  | { readonly type: "request-merge"; readonly problem: string | undefined; readonly outputExists: boolean }
  | { readonly type: "confirm-merge" }
  | { readonly type: "merge-running" }
  | { readonly type: "merge-cancel" }
  | { readonly type: "merge-finished"; readonly output: string; readonly sha256: string | undefined; readonly ms: number; readonly bytes: number }
  | { readonly type: "merge-failed"; readonly error: string; readonly cancelled: boolean }
  | { readonly type: "merge-close" };

const round = (x: number) => Math.round(x * 1e6) / 1e6;
const clone = <T>(v: T): T => JSON.parse(JSON.stringify(v)) as T;

/** The block family of a manifest's architecture label (scan writes SD1.5, SDXL, Pony, …), read with merge-engine's label table. */
function familyOf(label: string | undefined): BlockFamily {
  const architecture = label === undefined ? undefined : architectureOfLabel(label);
  return architecture === "sdxl" || architecture === "sdxl-refiner" ? "sdxl" : "sd1";
}

export function createEditorState(file: string, manifest: ManifestInput, registry: MethodRegistry): EditorState {
  const { models, ...top } = clone(manifest);
  const entries = models.map((entry, i) => ({ entry, i })).sort((a, b) => (a.entry.index ?? a.i) - (b.entry.index ?? b.i));
  const state: EditorState = {
    file,
    // Models in index order, the form every save writes: the diff shows only the user's edits.
    saved: { models: [] },
    top,
    models: entries.map(({ entry }) => ({ entry })),
    methods: registry.names(),
    row: 0,
    col: 0,
    selected: 0,
    family: familyOf(entries.map((e) => e.entry.architecture).find((a) => typeof a === "string") as string | undefined),
    mode: "normal",
    text: "",
    clipboard: undefined,
    message: undefined,
    paramError: undefined,
    picker: undefined,
    mergeOverwrite: false,
    merge: undefined,
  };
  return withParamCheck({ ...state, saved: manifestOf(state) }, registry);
}

export const methodName = (s: EditorState): string => (typeof s.top.merge_method === "string" ? s.top.merge_method : "weighted_sum");
const paramsOf = (s: EditorState): Json => (s.top.merge_params && typeof s.top.merge_params === "object" ? s.top.merge_params : {});

function methodOf(s: EditorState, registry: MethodRegistry): AnyMergeMethod | undefined {
  return registry.has(methodName(s)) ? registry.get(methodName(s)) : undefined;
}

/** The method's parameters with their values: those written, else the schema's defaults. */
export function paramRows(s: EditorState, registry: MethodRegistry): { name: string; value: unknown; written: boolean }[] {
  const method = methodOf(s, registry);
  if (!method) return [];
  const names = methodParamNames(method) ?? Object.keys(paramsOf(s));
  const defaults = method.params.safeParse({});
  const d = (defaults.success ? defaults.data : {}) as Json;
  return names.map((name) => ({ name, value: paramsOf(s)[name] ?? d[name], written: name in paramsOf(s) }));
}

/** The rows the cursor moves over, top to bottom. */
export function rowsOf(s: EditorState, registry: MethodRegistry): Row[] {
  return [
    ...s.models.map((_, model) => ({ kind: "model", model }) as const),
    { kind: "method" },
    ...paramRows(s, registry).map((p) => ({ kind: "param", name: p.name }) as const),
    ...(blockRow(s, s.selected) ? [{ kind: "blocks" } as const] : []),
    { kind: "vae" },
    { kind: "output" },
    { kind: "precision" },
  ];
}

/** The block row of a model in the grid's order, or undefined when it has none. */
export function blockRow(s: EditorState, model: number): number[] | undefined {
  const m = s.models[model];
  const bw = m?.entry.block_weights;
  if (!m || bw === undefined) return undefined;
  const names = BLOCK_ROWS[s.family];
  const weight = Number(m.entry.weight);
  if (Array.isArray(bw)) return names.map((_, i) => Number(bw[i] ?? weight));
  return names.map((b) => Number(bw[b] ?? weight));
}

/**
 * Writes a block row back in the form the model's manifest entry uses: a list stays a list (values
 * past the grid, such as a trailing VAE value, kept), named blocks stay named (only `columns` are
 * set, so unnamed blocks stay unnamed). A model without one takes the form the other models use.
 */
function withBlockRow(s: EditorState, model: number, values: readonly number[], columns?: readonly number[]): EditorState {
  const m = s.models[model]!;
  const names = BLOCK_ROWS[s.family];
  const cols = columns ?? names.map((_, c) => c);
  const bw = m.entry.block_weights ?? s.models.map((o) => o.entry.block_weights).find((o) => o !== undefined && !Array.isArray(o));
  let next: BlockWeights;
  if (bw !== undefined && !Array.isArray(bw)) {
    const named: Record<string, number> = m.entry.block_weights === undefined ? {} : { ...bw };
    for (const c of m.entry.block_weights === undefined ? names.map((_, c) => c) : cols) named[names[c]!] = values[c]!;
    next = named;
  } else {
    const list = Array.isArray(m.entry.block_weights) ? [...m.entry.block_weights] : [];
    for (const c of m.entry.block_weights === undefined ? names.map((_, c) => c) : cols) {
      while (list.length < c) list.push(values[list.length]!);
      list[c] = values[c]!;
    }
    next = list;
  }
  return setModel(s, model, { ...m.entry, block_weights: next });
}

export const weightSum = (s: EditorState): number => round(s.models.filter(isIncluded).reduce((t, m) => t + Number(m.entry.weight), 0));

/** The manifest as it would be saved: every model in list order (excluded ones marked), indices renumbered in that order. */
export function manifestOf(s: EditorState): ManifestInput {
  const indexed = s.models.some((o) => "index" in o.entry);
  const models = s.models.map((m, index) => (indexed ? { ...m.entry, index } : m.entry));
  return { ...s.top, models };
}

export interface Change {
  readonly path: string;
  readonly before: unknown;
  readonly after: unknown;
}

/** Field-level differences between two manifests (what a save changes). */
export function diffManifests(before: unknown, after: unknown, path = ""): Change[] {
  const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(before) && isObj(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
    return keys.flatMap((k) => diffManifests(before[k], after[k], path ? `${path}.${k}` : k));
  }
  if (Array.isArray(before) && Array.isArray(after) && (path === "models" || before.length === after.length)) {
    const n = Math.max(before.length, after.length);
    return Array.from({ length: n }, (_, i) => diffManifests(before[i], after[i], `${path}[${i}]`)).flat();
  }
  return JSON.stringify(before) === JSON.stringify(after) ? [] : [{ path, before, after }];
}

export const isDirty = (s: EditorState): boolean => diffManifests(s.saved, manifestOf(s)).length > 0;

/** Checks the method's parameters through its own schema (built-in or plugin). */
function withParamCheck(s: EditorState, registry: MethodRegistry): EditorState {
  const method = methodOf(s, registry);
  if (!method) return { ...s, paramError: `unknown merge method ${JSON.stringify(methodName(s))} (available: ${s.methods.join(", ")}; a plugin's needs --plugin)` };
  try {
    checkParamNames(method, paramsOf(s));
  } catch (error) {
    return { ...s, paramError: (error as Error).message };
  }
  const parsed = method.params.safeParse(paramsOf(s));
  if (parsed.success) return { ...s, paramError: undefined };
  const issue = parsed.error.issues[0];
  return { ...s, paramError: `merge_params.${issue?.path.join(".") ?? ""}: ${issue?.message ?? "invalid"}` };
}

const setModel = (s: EditorState, i: number, entry: ModelEntry): EditorState => ({ ...s, models: s.models.map((m, k) => (k === i ? { ...m, entry } : m)) });
const clampRow = (s: EditorState, registry: MethodRegistry): EditorState => {
  const n = rowsOf(s, registry).length;
  return { ...s, row: Math.max(0, Math.min(s.row, n - 1)), selected: Math.max(0, Math.min(s.selected, s.models.length - 1)) };
};

function cycle<T>(list: readonly T[], current: T, by: number): T {
  const i = list.indexOf(current);
  return list[(((i < 0 ? 0 : i + by) % list.length) + list.length) % list.length]!;
}

/** Enum options of a zod field, when it has them. */
function enumOptions(method: AnyMergeMethod, name: string): readonly string[] | undefined {
  const field = (method.params as unknown as { shape?: Record<string, unknown> }).shape?.[name] as { options?: unknown; unwrap?: () => unknown } | undefined;
  const inner = (field?.options ? field : (field?.unwrap?.() as typeof field)) ?? undefined;
  return Array.isArray(inner?.options) && inner.options.every((o) => typeof o === "string") ? (inner.options as string[]) : undefined;
}

function adjust(s: EditorState, registry: MethodRegistry, sign: 1 | -1, coarse: boolean): EditorState {
  const row = rowsOf(s, registry)[s.row];
  const step = sign * (coarse ? COARSE_STEP : FINE_STEP);
  switch (row?.kind) {
    case "model": {
      const m = s.models[row.model]!;
      return setModel(s, row.model, { ...m.entry, weight: round(Number(m.entry.weight) + step) });
    }
    case "blocks": {
      const values = blockRow(s, s.selected)!;
      values[s.col] = round(values[s.col]! + step);
      return withBlockRow(s, s.selected, values, [s.col]);
    }
    case "method": {
      const next = cycle(s.methods, methodName(s), sign);
      const method = registry.get(next);
      // Parameters the new method does not take are dropped (it would refuse them).
      const names = methodParamNames(method);
      const kept = Object.fromEntries(Object.entries(paramsOf(s)).filter(([k]) => !names || names.includes(k)));
      const { merge_params: _drop, ...top } = s.top;
      return withParamCheck({ ...s, top: { ...top, merge_method: next, ...(Object.keys(kept).length ? { merge_params: kept } : {}) } }, registry);
    }
    case "param": {
      const method = methodOf(s, registry)!;
      const current = paramRows(s, registry).find((p) => p.name === row.name)?.value;
      const options = enumOptions(method, row.name);
      const value =
        typeof current === "boolean" ? !current
        : options ? cycle(options, String(current), sign)
        : Number.isInteger(current) && (row.name === "seed" || row.name === "exponent" || /count|steps|iterations/.test(row.name)) ? Number(current) + sign * (coarse ? 10 : 1)
        : round(Number(current ?? 0) + step);
      return withParamCheck({ ...s, top: { ...s.top, merge_params: { ...paramsOf(s), [row.name]: value } } }, registry);
    }
    case "precision": {
      return { ...s, top: { ...s.top, output_precision: cycle(PRECISIONS, s.top.output_precision ?? "match", sign) } };
    }
    default:
      return s;
  }
}

/** SuperMerger-style presets over a row: flat at the model's weight, or linear 0 → 1 / 1 → 0 across the blocks. */
function presetValues(preset: "flat" | "ramp-in" | "ramp-out", length: number, weight: number): number[] {
  if (preset === "flat") return Array.from({ length }, () => weight);
  return Array.from({ length }, (_, i) => round(preset === "ramp-in" ? i / (length - 1) : 1 - i / (length - 1)));
}

const textField = (row: Row | undefined): "vae" | "output" | undefined => (row?.kind === "vae" || row?.kind === "output" ? row.kind : undefined);
const pathOf = (v: unknown): string => (typeof v === "string" ? v : v && typeof v === "object" && typeof (v as Json).path === "string" ? ((v as Json).path as string) : "");

export const vaePath = (s: EditorState): string => pathOf(s.top.vae);
export const outputPath = (s: EditorState): string => pathOf(s.top.output);

/** The picker's files that match its filter (case-insensitive), in listing order. */
export function pickerShown(s: EditorState): readonly PickerFile[] {
  const filter = s.picker?.filter.toLowerCase() ?? "";
  return (s.picker?.files ?? []).filter((f) => f.path.toLowerCase().includes(filter));
}

/** Adds the picked file as the last model with weight 0 (the merge is unchanged until the user sets it). */
function addPicked(s: EditorState, registry: MethodRegistry): EditorState {
  const file = pickerShown(s)[s.picker?.cursor ?? 0];
  if (!file) return s;
  if (s.models.some((m) => m.entry.path === file.path)) return { ...s, message: `${file.path} is already in the manifest` };
  if (!file.info) return { ...s, message: `${file.path}: its header is still being read; Enter again in a moment` };
  if (file.info?.kind === "lora") return { ...s, message: `${file.path} is a LoRA, not a checkpoint: bake it with stmerge lora bake or list it under "loras"` };
  if (file.info?.kind === "vae") return { ...s, message: `${file.path} is a VAE, not a checkpoint: set it on the vae row` };
  const info = file.info?.kind === "checkpoint" ? file.info : undefined;
  const entry: ModelEntry = {
    path: file.path,
    weight: 0,
    ...(info && info.label !== "unknown" ? { architecture: info.label } : {}),
    ...(info?.precision ? { precision_detected: info.precision } : {}),
  };
  const added: EditorState = { ...s, models: [...s.models, { entry }], mode: "normal", picker: undefined, selected: s.models.length, message: `added ${file.path} with weight 0 (+/- sets it, n normalizes)` };
  return { ...added, row: rowsOf(added, registry).findIndex((r) => r.kind === "model" && r.model === s.models.length) };
}

export function editorReducer(s: EditorState, action: EditorAction, registry: MethodRegistry): EditorState {
  const rows = rowsOf(s, registry);
  const row = rows[s.row];
  const next = ((): EditorState => {
    switch (action.type) {
      case "move": {
        if (action.dx && row?.kind === "blocks") return { ...s, col: Math.max(0, Math.min(BLOCK_ROWS[s.family].length - 1, s.col + action.dx)) };
        const r = Math.max(0, Math.min(rows.length - 1, s.row + (action.dy ?? 0)));
        const to = rows[r];
        return { ...s, row: r, ...(to?.kind === "model" ? { selected: to.model } : {}) };
      }
      case "next-section": {
        const kinds = rows.map((r) => (r.kind === "model" || r.kind === "param" ? r.kind : `${r.kind}`));
        const here = kinds[s.row];
        const order = [...new Set(kinds)];
        const target = order[(order.indexOf(here!) + (action.back ? -1 : 1) + order.length) % order.length];
        return { ...s, row: kinds.indexOf(target!) };
      }
      case "adjust":
        return adjust(s, registry, action.sign, action.coarse);
      case "normalize": {
        const total = weightSum(s);
        if (Math.abs(total) < 1e-12) return { ...s, message: "weights sum to 0: nothing to normalize" };
        let out: EditorState = { ...s, models: s.models.map((m) => (isIncluded(m) ? { ...m, entry: { ...m.entry, weight: round(Number(m.entry.weight) / total) } } : m)) };
        // Block rows are rescaled per block when every included model has one.
        const included = s.models.map((m, i) => [m, i] as const).filter(([m]) => isIncluded(m));
        const grids = included.map(([, i]) => blockRow(s, i));
        if (grids.length && grids.every((g) => g)) {
          const columns = BLOCK_ROWS[s.family].length;
          const sums = Array.from({ length: columns }, (_, c) => grids.reduce((t, g) => t + g![c]!, 0));
          included.forEach(([, i], k) => {
            out = withBlockRow(out, i, grids[k]!.map((v, c) => (Math.abs(sums[c]!) < 1e-12 ? v : round(v / sums[c]!))));
          });
        }
        return { ...out, message: `weights normalized (sum was ${total})` };
      }
      case "toggle-include": {
        if (row?.kind !== "model") return s;
        const m = s.models[row.model]!;
        if (isIncluded(m) && s.models.filter(isIncluded).length === 1) return { ...s, message: "the last included model cannot be excluded" };
        const { excluded: _was, ...entry } = m.entry;
        return setModel(s, row.model, isIncluded(m) ? { ...entry, excluded: true } : entry);
      }
      case "reorder": {
        if (row?.kind !== "model") return s;
        const to = row.model + action.by;
        if (to < 0 || to >= s.models.length) return s;
        const models = [...s.models];
        [models[row.model], models[to]] = [models[to]!, models[row.model]!];
        return { ...s, models, row: s.row + action.by, selected: to };
      }
      case "remove": {
        if (row?.kind === "vae") return editorReducer(s, { type: "clear" }, registry);
        if (row?.kind !== "model") return s;
        if (s.models.length === 1) return { ...s, message: "a manifest needs at least one model" };
        if (isIncluded(s.models[row.model]!) && s.models.filter(isIncluded).length === 1) return { ...s, message: "the last included model cannot be removed" };
        return { ...s, models: s.models.filter((_, k) => k !== row.model), selected: Math.min(s.selected, s.models.length - 2) };
      }
      case "toggle-blocks": {
        const m = s.models[s.selected]!;
        if (m.entry.block_weights !== undefined) {
          const { block_weights: _drop, ...entry } = m.entry;
          return setModel(s, s.selected, entry);
        }
        return withBlockRow(s, s.selected, presetValues("flat", BLOCK_ROWS[s.family].length, Number(m.entry.weight)));
      }
      case "preset": {
        const m = s.models[s.selected]!;
        return withBlockRow(s, s.selected, presetValues(action.preset, BLOCK_ROWS[s.family].length, Number(m.entry.weight)));
      }
      case "copy-row": {
        const values = blockRow(s, s.selected);
        return values ? { ...s, clipboard: values, message: `copied the block row of model ${s.selected}` } : { ...s, message: "this model has no block row (b adds one)" };
      }
      case "paste-row":
        if (!s.clipboard) return { ...s, message: "nothing copied (c copies a block row)" };
        return { ...withBlockRow(s, s.selected, s.clipboard), message: `pasted the block row into model ${s.selected}` };
      case "edit-text": {
        const field = textField(row);
        return field ? { ...s, mode: "text", text: field === "vae" ? vaePath(s) : outputPath(s) } : s;
      }
      case "text-input":
        return s.mode === "text" ? { ...s, text: s.text + action.text.replace(/[\u0000-\u001f\u007f]/g, "") } : s;
      case "text-backspace":
        return s.mode === "text" ? { ...s, text: s.text.slice(0, -1) } : s;
      case "text-commit": {
        const field = textField(row);
        if (s.mode !== "text" || !field) return { ...s, mode: "normal" };
        const text = s.text.trim();
        const before = s.top[field];
        const top = { ...s.top };
        if (!text) delete top[field];
        // The object form keeps its hashes only while the path is unchanged.
        else top[field] = before && typeof before === "object" && pathOf(before) === text ? before : before && typeof before === "object" ? { path: text } : text;
        return { ...s, top, mode: "normal", text: "" };
      }
      case "clear": {
        if (row?.kind !== "vae") return s;
        const { vae: _drop, vae_sha256: _sha, ...top } = s.top;
        return { ...s, top };
      }
      case "mode":
        return { ...s, mode: action.mode };
      case "request-save":
        return isDirty(s) ? { ...s, mode: "confirm-save" } : { ...s, message: "no changes to save" };
      case "request-quit":
        return isDirty(s) ? { ...s, mode: "confirm-quit" } : { ...s, mode: "quit" };
      case "saved":
        // Saving on the way to a merge leaves the merge screen up.
        return { ...s, saved: clone(action.manifest), mode: s.mode === "merge" ? "merge" : "normal", message: "saved" };
      case "message":
        return { ...s, message: action.text };
      case "open-picker":
        return { ...s, mode: "pick", picker: { files: undefined, truncated: false, filter: "", cursor: 0 } };
      case "picker-files":
        return s.picker ? { ...s, picker: { ...s.picker, files: action.files.map((path) => ({ path })), truncated: action.truncated, cursor: 0 } } : s;
      case "picker-info":
        return s.picker?.files ? { ...s, picker: { ...s.picker, files: s.picker.files.map((f) => (f.path === action.path ? { ...f, info: action.info } : f)) } } : s;
      case "picker-move": {
        if (!s.picker) return s;
        const shown = pickerShown(s).length;
        return { ...s, picker: { ...s.picker, cursor: Math.max(0, Math.min(shown - 1, s.picker.cursor + action.by)) } };
      }
      case "picker-filter":
        return s.picker ? { ...s, picker: { ...s.picker, filter: s.picker.filter + action.text.replace(/[\u0000-\u001f\u007f]/g, ""), cursor: 0 } } : s;
      case "picker-backspace":
        return s.picker ? { ...s, picker: { ...s.picker, filter: s.picker.filter.slice(0, -1), cursor: 0 } } : s;
      case "picker-choose":
        return addPicked(s, registry);
      case "request-merge":
        if (action.problem !== undefined) return { ...s, message: `cannot merge: ${action.problem}` };
        if (isDirty(s) || action.outputExists) return { ...s, mode: "confirm-merge", mergeOverwrite: action.outputExists };
        return { ...s, mode: "merge", merge: { status: "starting", overwrite: false } };
      case "confirm-merge":
        return s.mode === "confirm-merge" ? { ...s, mode: "merge", merge: { status: "starting", overwrite: s.mergeOverwrite } } : s;
      case "merge-running":
        return s.merge?.status === "starting" ? { ...s, merge: { ...s.merge, status: "running" } } : s;
      case "merge-cancel":
        return s.merge?.status === "running" || s.merge?.status === "starting" ? { ...s, merge: { ...s.merge, status: "cancelling" } } : s;
      case "merge-finished":
        return { ...s, merge: { status: "done", output: action.output, sha256: action.sha256, ms: action.ms, bytes: action.bytes } };
      case "merge-failed":
        return { ...s, merge: { status: action.cancelled ? "cancelled" : "failed", error: action.error } };
      case "merge-close":
        return s.merge?.status === "done" || s.merge?.status === "failed" || s.merge?.status === "cancelled" ? { ...s, mode: "normal", merge: undefined } : s;
    }
  })();
  // A note from an earlier action goes away at the next movement or edit.
  const message = ["move", "adjust", "picker-move", "picker-filter", "picker-backspace"].includes(action.type) && next.message === s.message ? undefined : next.message;
  return clampRow({ ...next, message }, registry);
}
