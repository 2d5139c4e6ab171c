import { createMethodRegistry, defineMergeMethod, type MethodRegistry } from "@stmerge/merge-engine";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { BLOCK_ROWS, createEditorState, diffManifests, editorReducer, isDirty, manifestOf, pickerShown, rowsOf, weightSum, type EditorAction, type EditorState } from "./editor-state.js";

const MANIFEST = {
  $schema: "https://example.invalid/manifest.schema.json",
  models: [
    { path: "models/b.safetensors", weight: 0.3, index: 1, architecture: "SD1.5", sha256: "a".repeat(64) },
    { path: "models/a.safetensors", weight: 0.5, index: 0, architecture: "SD1.5" },
    { path: "models/c.safetensors", weight: 0.7, index: 2, architecture: "SD1.5" },
  ],
  output: { path: "out.safetensors", sha256: "b".repeat(64) },
  merge_method: "weighted_sum",
};

function run(registry: MethodRegistry, ...actions: EditorAction[]): EditorState {
  return actions.reduce((s, a) => editorReducer(s, a, registry), createEditorState("/m/merge.json", MANIFEST, registry));
}
const builtin = createMethodRegistry();

describe("editor state", () => {
  it("orders models by index and moves focus across the rows", () => {
    const s = run(builtin);
    expect(s.models.map((m) => m.entry.path)).toEqual(["models/a.safetensors", "models/b.safetensors", "models/c.safetensors"]);
    expect(rowsOf(s, builtin).map((r) => r.kind)).toEqual(["model", "model", "model", "method", "param", "vae", "output", "precision"]);
    const down = run(builtin, { type: "move", dy: 1 }, { type: "move", dy: 1 }, { type: "move", dy: 5 }, { type: "move", dy: 5 });
    expect(down.row).toBe(7);
    expect(down.selected).toBe(2);
    expect(run(builtin, { type: "move", dy: -3 }).row).toBe(0);
    // Tab jumps section to section: models → method → params → vae.
    const tabbed = run(builtin, { type: "next-section" }, { type: "next-section" }, { type: "next-section" });
    expect(rowsOf(tabbed, builtin)[tabbed.row]?.kind).toBe("vae");
  });

  it("changes the focused weight by fine and coarse steps, tracks dirtiness and the save diff", () => {
    const s = run(builtin, { type: "adjust", sign: 1, coarse: false }, { type: "adjust", sign: 1, coarse: true }, { type: "adjust", sign: 1, coarse: true });
    expect(s.models[0]!.entry.weight).toBe(0.71);
    expect(isDirty(s)).toBe(true);
    expect(diffManifests(s.saved, manifestOf(s))).toEqual([{ path: "models[0].weight", before: 0.5, after: 0.71 }]);
    // Compared field by field against a hand-built expectation: only a's weight changes.
    const saved = manifestOf(s);
    const models = saved.models as Record<string, unknown>[];
    expect(models.map((m) => [m.path, m.weight, m.index])).toEqual([["models/a.safetensors", 0.71, 0], ["models/b.safetensors", 0.3, 1], ["models/c.safetensors", 0.7, 2]]);
    // Fields the editor does not know are kept as read.
    expect(saved.$schema).toBe(MANIFEST.$schema);
    expect(models[1]!.sha256).toBe("a".repeat(64));
    const back = run(builtin, { type: "adjust", sign: 1, coarse: false }, { type: "adjust", sign: -1, coarse: false });
    expect(isDirty(back)).toBe(false);
    expect(run(builtin, { type: "request-save" }).message).toBe("no changes to save");
    expect(run(builtin, { type: "adjust", sign: -1, coarse: false }, { type: "request-save" }).mode).toBe("confirm-save");
  });

  it("normalizes the included weights to sum 1 and excludes, reorders and removes models", () => {
    const n = run(builtin, { type: "normalize" });
    expect(n.models.map((m) => m.entry.weight)).toEqual([0.333333, 0.2, 0.466667]);
    expect(weightSum(n)).toBe(1);
    const ex = run(builtin, { type: "move", dy: 2 }, { type: "toggle-include" }, { type: "normalize" });
    expect(ex.models.map((m) => m.entry.weight)).toEqual([0.625, 0.375, 0.7]);
    // The excluded model stays in the manifest, marked: the diff is that one field and the weights normalized.
    expect(manifestOf(ex).models[2]).toEqual({ path: "models/c.safetensors", weight: 0.7, index: 2, architecture: "SD1.5", excluded: true });
    expect(diffManifests(ex.saved, manifestOf(ex)).map((c) => c.path)).toEqual(["models[0].weight", "models[1].weight", "models[2].excluded"]);
    // Included again: the field goes, and the manifest is as loaded.
    expect(isDirty(run(builtin, { type: "move", dy: 2 }, { type: "toggle-include" }, { type: "toggle-include" }))).toBe(false);
    const re = run(builtin, { type: "move", dy: 1 }, { type: "reorder", by: -1 });
    expect(re.models.map((m) => m.entry.path)).toEqual(["models/b.safetensors", "models/a.safetensors", "models/c.safetensors"]);
    expect(re.row).toBe(0);
    expect((manifestOf(re).models as { index: number; path: string }[]).map((m) => `${m.index}:${m.path}`)).toEqual(["0:models/b.safetensors", "1:models/a.safetensors", "2:models/c.safetensors"]);
    const rm = run(builtin, { type: "remove" }, { type: "remove" });
    expect(rm.models.map((m) => m.entry.path)).toEqual(["models/c.safetensors"]);
    expect(run(builtin, { type: "remove" }, { type: "remove" }, { type: "remove" }).message).toBe("a manifest needs at least one model");
  });

  it("changes method with parameters checked by the method's schema, plugins included", () => {
    const toTies = run(builtin, { type: "move", dy: 3 }, { type: "adjust", sign: 1, coarse: false }, { type: "adjust", sign: 1, coarse: false }, { type: "adjust", sign: 1, coarse: false });
    expect(toTies.top.merge_method).toBe("ties");
    expect(rowsOf(toTies, builtin).filter((r) => r.kind === "param").map((r) => (r as { name: string }).name)).toEqual(["density", "lambda"]);
    // density 0.2 + 10 coarse steps = 1.2 > max 1: zod's message shown inline.
    const over = run(builtin, { type: "move", dy: 3 }, ...Array.from({ length: 3 }, () => ({ type: "adjust", sign: 1, coarse: false }) as const), { type: "move", dy: 1 }, ...Array.from({ length: 9 }, () => ({ type: "adjust", sign: 1, coarse: true }) as const));
    expect(over.top.merge_params).toEqual({ density: 1.1 });
    expect(over.paramError).toMatch(/^merge_params\.density: .*1/);
    const plugin = defineMergeMethod({
      name: "median_mix",
      description: "test plugin",
      params: z.object({ mode: z.enum(["fast", "exact"]).default("fast") }),
      arity: { min: 2 },
      usesWeights: false,
      blockParams: [],
      elementwise: true,
      merge: async (ctx) => ctx.out,
    });
    const withPlugin = createMethodRegistry();
    withPlugin.register(plugin);
    const s = run(withPlugin, { type: "move", dy: 3 }, { type: "adjust", sign: -1, coarse: false }, { type: "move", dy: 1 }, { type: "adjust", sign: 1, coarse: false });
    expect(s.top.merge_method).toBe("median_mix");
    expect(s.top.merge_params).toEqual({ mode: "exact" });
    expect(s.paramError).toBeUndefined();
    const bad = createEditorState("/m/x.json", { ...MANIFEST, merge_method: "ties", merge_params: { densty: 0.3 } }, builtin);
    expect(bad.paramError).toContain('did you mean "density"');
  });

  it("edits block rows: SD1 26 and SDXL 20 values, presets, copy a row to another model, normalize per block", () => {
    const s = run(builtin, { type: "toggle-blocks" });
    const blocksRow = rowsOf(s, builtin).findIndex((r) => r.kind === "blocks");
    expect(BLOCK_ROWS.sd1).toHaveLength(26);
    expect(BLOCK_ROWS.sdxl).toHaveLength(20);
    expect(s.models[0]!.entry.block_weights).toEqual(Array(26).fill(0.5));
    const edited = editorReducer(editorReducer(editorReducer(s, { type: "move", dy: blocksRow }, builtin), { type: "move", dx: 4 }, builtin), { type: "adjust", sign: -1, coarse: true }, builtin);
    expect((edited.models[0]!.entry.block_weights as number[])[4]).toBe(0.4);
    const ramp = run(builtin, { type: "preset", preset: "ramp-in" });
    expect((ramp.models[0]!.entry.block_weights as number[]).slice(0, 2)).toEqual([0, 0.04]);
    expect((ramp.models[0]!.entry.block_weights as number[])[25]).toBe(1);
    expect((run(builtin, { type: "preset", preset: "ramp-out" }).models[0]!.entry.block_weights as number[])[0]).toBe(1);
    const pasted = run(builtin, { type: "preset", preset: "ramp-in" }, { type: "copy-row" }, { type: "move", dy: 1 }, { type: "paste-row" });
    expect(pasted.models[1]!.entry.block_weights).toEqual(pasted.models[0]!.entry.block_weights);
    const xl = createEditorState("/m/x.json", { models: [{ path: "a", weight: 1, architecture: "SDXL" }, { path: "b", weight: 1, architecture: "SDXL" }] }, builtin);
    const xlRows = [{ type: "toggle-blocks" }, { type: "move", dy: 1 }, { type: "preset", preset: "ramp-in" }, { type: "normalize" }] as const;
    const norm = xlRows.reduce((st: EditorState, a) => editorReducer(st, a, builtin), xl);
    expect(norm.models[0]!.entry.block_weights).toHaveLength(20);
    const a = norm.models[0]!.entry.block_weights as number[];
    const b = norm.models[1]!.entry.block_weights as number[];
    // Each block's two weights sum to 1 after normalize (flat 0.5·… / ramp).
    for (let i = 0; i < 20; i++) expect(a[i]! + b[i]!).toBeCloseTo(1, 5);
    expect(b[0]).toBe(0);
  });

  it("edits VAE, output name and precision; quitting with changes asks", () => {
    const rows = rowsOf(run(builtin), builtin);
    const out = rows.findIndex((r) => r.kind === "output");
    const s = run(builtin, { type: "move", dy: out }, { type: "edit-text" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-backspace" }, { type: "text-input", text: "mix\u001b[2J.safetensors" });
    expect(s.text).toBe("mix[2J.safetensors");
    const committed = editorReducer(s, { type: "text-commit" }, builtin);
    // A new path drops the old output hash (it described another file).
    expect(committed.top.output).toEqual({ path: "mix[2J.safetensors" });
    const vae = editorReducer(editorReducer(editorReducer(editorReducer(committed, { type: "move", dy: -1 }, builtin), { type: "edit-text" }, builtin), { type: "text-input", text: "vae/ft-mse.safetensors" }, builtin), { type: "text-commit" }, builtin);
    expect(vae.top.vae).toBe("vae/ft-mse.safetensors");
    expect(editorReducer(vae, { type: "clear" }, builtin).top.vae).toBeUndefined();
    const prec = editorReducer(editorReducer(vae, { type: "move", dy: 2 }, builtin), { type: "adjust", sign: 1, coarse: false }, builtin);
    expect(prec.top.output_precision).toBe("fp16");
    expect(editorReducer(prec, { type: "request-quit" }, builtin).mode).toBe("confirm-quit");
    expect(run(builtin, { type: "request-quit" }).mode).toBe("quit");
    const saved = editorReducer(prec, { type: "saved", manifest: manifestOf(prec) }, builtin);
    expect(isDirty(saved)).toBe(false);
  });

  it("loads excluded models as excluded and keeps them on save; the last included one cannot be excluded or removed", () => {
    const s = createEditorState("/m/x.json", { models: [{ path: "a", weight: 1, index: 0 }, { path: "b", weight: 0.4, index: 1, excluded: true }] }, builtin);
    expect(weightSum(s)).toBe(1);
    expect(manifestOf(s)).toEqual({ models: [{ path: "a", weight: 1, index: 0 }, { path: "b", weight: 0.4, index: 1, excluded: true }] });
    expect(editorReducer(s, { type: "toggle-include" }, builtin).message).toBe("the last included model cannot be excluded");
    expect(editorReducer(s, { type: "remove" }, builtin).message).toBe("the last included model cannot be removed");
  });

  it("keeps the block-weight form of the file: a list stays a list (a trailing VAE value kept), named blocks stay named", () => {
    const list = [...Array(26).fill(0.5), 0.9];
    const s = createEditorState("/m/x.json", { models: [{ path: "a", weight: 0.5, block_weights: list }, { path: "b", weight: 0.5, block_weights: { IN04: 0.2, OUT11: 0.7 } }] }, builtin);
    const blocks = rowsOf(s, builtin).findIndex((r) => r.kind === "blocks");
    const onList = [{ type: "move", dy: blocks }, { type: "move", dx: 3 }, { type: "adjust", sign: 1, coarse: true }] as const;
    const a = onList.reduce((st: EditorState, x) => editorReducer(st, x, builtin), s);
    expect(diffManifests(a.saved, manifestOf(a))).toEqual([{ path: "models[0].block_weights[3]", before: 0.5, after: 0.6 }]);
    expect(manifestOf(a).models[0]!.block_weights).toEqual([0.5, 0.5, 0.5, 0.6, ...Array(22).fill(0.5), 0.9]);
    // Model b's named blocks: IN04 is column 5 of BASE, IN00…; only that name changes.
    const onNamed = [{ type: "move", dy: 1 }, { type: "move", dy: blocks - 1 }, { type: "move", dx: 5 }, { type: "adjust", sign: -1, coarse: false }] as const;
    const b = onNamed.reduce((st: EditorState, x) => editorReducer(st, x, builtin), s);
    expect(b.selected).toBe(1);
    expect(diffManifests(b.saved, manifestOf(b))).toEqual([{ path: "models[1].block_weights.IN04", before: 0.2, after: 0.19 }]);
    // A preset on a named row writes every block by name; a new row takes the named form the other model uses.
    const ramp = editorReducer(b, { type: "preset", preset: "ramp-out" }, builtin);
    expect(Object.keys(ramp.models[1]!.entry.block_weights!)).toEqual(expect.arrayContaining(["BASE", "IN04", "OUT11"]));
    expect(Array.isArray(ramp.models[1]!.entry.block_weights)).toBe(false);
    const c = createEditorState("/m/x.json", { models: [{ path: "a", weight: 0.5 }, { path: "b", weight: 0.5, block_weights: { IN04: 0.2 } }] }, builtin);
    const added = editorReducer(c, { type: "toggle-blocks" }, builtin).models[0]!.entry.block_weights as Record<string, number>;
    expect(Object.keys(added)).toHaveLength(26);
    expect(added.OUT11).toBe(0.5);
  });

  it("picker: lists, filters, marks LoRA and VAE files and refuses them, adds a checkpoint at weight 0 with its label and precision, Esc closes", () => {
    const open = run(builtin, { type: "open-picker" });
    expect(open.mode).toBe("pick");
    expect(pickerShown(open)).toEqual([]);
    const listed = [
      { type: "picker-files", files: ["models/a.safetensors", "loras/style.safetensors", "vae/kl.safetensors", "sub/d.ckpt"], truncated: false },
      { type: "picker-info", path: "loras/style.safetensors", info: { kind: "lora", label: "LoRA" } },
      { type: "picker-info", path: "vae/kl.safetensors", info: { kind: "vae", label: "VAE" } },
      { type: "picker-info", path: "sub/d.ckpt", info: { kind: "checkpoint", label: "SD1.5", precision: "fp32" } },
    ] as const;
    const p = listed.reduce((st: EditorState, a) => editorReducer(st, a, builtin), open);
    expect(pickerShown(p).map((f) => f.path)).toHaveLength(4);
    expect(editorReducer(p, { type: "picker-choose" }, builtin).message).toBe("models/a.safetensors is already in the manifest");
    const lora = editorReducer(p, { type: "picker-move", by: 1 }, builtin);
    expect(editorReducer(lora, { type: "picker-choose" }, builtin).message).toMatch(/^loras\/style\.safetensors is a LoRA, not a checkpoint/);
    const vae = editorReducer(p, { type: "picker-move", by: 2 }, builtin);
    expect(editorReducer(vae, { type: "picker-choose" }, builtin).message).toMatch(/is a VAE, not a checkpoint/);
    expect(editorReducer(p, { type: "picker-move", by: 99 }, builtin).picker!.cursor).toBe(3);
    const filtered = editorReducer(editorReducer(p, { type: "picker-filter", text: "SUB" }, builtin), { type: "picker-filter", text: "\u001b[2J" }, builtin);
    expect(filtered.picker!.filter).toBe("SUB[2J");
    const back = editorReducer(editorReducer(editorReducer(filtered, { type: "picker-backspace" }, builtin), { type: "picker-backspace" }, builtin), { type: "picker-backspace" }, builtin);
    expect(back.picker!.filter).toBe("SUB");
    expect(pickerShown(back).map((f) => f.path)).toEqual(["sub/d.ckpt"]);
    const added = editorReducer(back, { type: "picker-choose" }, builtin);
    expect(added.mode).toBe("normal");
    expect(added.picker).toBeUndefined();
    expect(added.models[3]!.entry).toEqual({ path: "sub/d.ckpt", weight: 0, architecture: "SD1.5", precision_detected: "fp32" });
    expect(rowsOf(added, builtin)[added.row]).toEqual({ kind: "model", model: 3 });
    expect(diffManifests(added.saved, manifestOf(added))).toEqual([{ path: "models[3]", before: undefined, after: { path: "sub/d.ckpt", weight: 0, architecture: "SD1.5", precision_detected: "fp32", index: 3 } }]);
    const unread = editorReducer(editorReducer(open, { type: "picker-files", files: ["x.safetensors"], truncated: true }, builtin), { type: "picker-choose" }, builtin);
    expect(unread.message).toBe("x.safetensors: its header is still being read; Enter again in a moment");
    expect(unread.picker!.truncated).toBe(true);
  });

  it("merge: refused while invalid, asks first when unsaved or replacing, then runs to done, failed or cancelled", () => {
    expect(run(builtin, { type: "request-merge", problem: "models/x: missing", outputExists: false }).message).toBe("cannot merge: models/x: missing");
    const clean = run(builtin, { type: "request-merge", problem: undefined, outputExists: false });
    expect(clean.mode).toBe("merge");
    expect(clean.merge).toEqual({ status: "starting", overwrite: false });
    const exists = run(builtin, { type: "request-merge", problem: undefined, outputExists: true });
    expect(exists.mode).toBe("confirm-merge");
    expect(editorReducer(exists, { type: "confirm-merge" }, builtin).merge).toEqual({ status: "starting", overwrite: true });
    const dirty = run(builtin, { type: "adjust", sign: 1, coarse: false }, { type: "request-merge", problem: undefined, outputExists: false });
    expect([dirty.mode, dirty.mergeOverwrite]).toEqual(["confirm-merge", false]);
    const running = [{ type: "confirm-merge" }, { type: "saved", manifest: manifestOf(dirty) }, { type: "merge-running" }] as const;
    const r = running.reduce((st: EditorState, a) => editorReducer(st, a, builtin), dirty);
    expect([r.mode, r.merge?.status, isDirty(r)]).toEqual(["merge", "running", false]);
    const cancelled = editorReducer(editorReducer(r, { type: "merge-cancel" }, builtin), { type: "merge-failed", error: "out.safetensors: merge cancelled; no output written", cancelled: true }, builtin);
    expect(cancelled.merge).toEqual({ status: "cancelled", error: "out.safetensors: merge cancelled; no output written" });
    expect(editorReducer(r, { type: "merge-close" }, builtin).mode).toBe("merge");
    const done = editorReducer(r, { type: "merge-finished", output: "/m/out.safetensors", sha256: "c".repeat(64), ms: 1200, bytes: 4096 }, builtin);
    expect(done.merge).toEqual({ status: "done", output: "/m/out.safetensors", sha256: "c".repeat(64), ms: 1200, bytes: 4096 });
    const closed = editorReducer(done, { type: "merge-close" }, builtin);
    expect([closed.mode, closed.merge]).toEqual(["normal", undefined]);
  });
});
