import { EventEmitter } from "node:events";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { PassThrough } from "node:stream";
import { createHash } from "node:crypto";
import { openSafetensors, writeFileAtomic } from "@stmerge/core-tensors";
import { createMethodRegistry, type ManifestInput } from "@stmerge/merge-engine";
import { render } from "ink";
import { createElement } from "react";
import { TINY_SD1_LAYOUT, type TinyTensor, writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEditorState, type EditorState } from "./editor-state.js";
import { EditorView, keyEffect } from "./editor-view.js";
import { describePickerFile } from "./describe-picker-file.js";
import { listModelFiles } from "./list-model-files.js";
import { runEditMerge } from "./run-edit-merge.js";
import { manifestText } from "./run-editor.js";
import { validateEdit } from "./validate-edit.js";

const LAYOUT = TINY_SD1_LAYOUT;

let dir: string;
const writeModel = (path: string, layout: readonly TinyTensor[] = LAYOUT) => writeTinySd1Model(path, { layout });
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-edit-view-"));
  mkdirSync(join(dir, "models"));
  await writeModel(join(dir, "models", "a.safetensors"));
  await writeModel(join(dir, "models", "b.safetensors"));
  // Cross-attention of width 1024 makes it an SD2 model: an architecture mismatch.
  await writeModel(join(dir, "models", "sd2.safetensors"), LAYOUT.map(([n, s]) => [n, n.endsWith("to_k.weight") ? [2, 1024] : s]));
  // Same keys and architecture, one shape differs: merge-engine's shape check names it.
  await writeModel(join(dir, "models", "wide.safetensors"), LAYOUT.map(([n, s]) => [n, n.endsWith("out.2.bias") ? [8] : s]));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A terminal of a given size in memory: ink writes whole frames in debug mode; the last one is the screen. */
function fakeTerminal(columns: number, rows: number) {
  const frames: string[] = [];
  const stdout = Object.assign(new EventEmitter(), { columns, rows, isTTY: true, write: (chunk: string) => (frames.push(chunk), true) });
  const stdin = Object.assign(new PassThrough(), { isTTY: true, setRawMode: () => stdin, ref: () => stdin, unref: () => stdin });
  // eslint-disable-next-line no-control-regex
  const screen = () => (frames.at(-1) ?? "").replace(/\u001b\[[0-9;?]*[A-Za-z]/g, "");
  return { stdout, stdin, frames, screen };
}

const registry = createMethodRegistry();
const manifestFile = (name: string, models: string[]) => {
  const file = join(dir, name);
  writeFileSync(file, manifestText({ models: models.map((path, index) => ({ path, weight: 0.5, index, architecture: "SD1.5" })), output: "out.safetensors" }));
  return file;
};

async function until(screen: () => string, text: string | RegExp, ms = 5000): Promise<string> {
  const start = Date.now();
  for (;;) {
    const s = screen();
    if (typeof text === "string" ? s.includes(text) : text.test(s)) return s;
    if (Date.now() - start > ms) throw new Error(`screen never showed ${String(text)}; last screen:\n${s}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function open(file: string, columns: number, rows: number, color = false, onExit?: (r: { saved: boolean }) => void) {
  const term = fakeTerminal(columns, rows);
  const state: EditorState = createEditorState(file, JSON.parse(readFileSync(file, "utf8")) as ManifestInput, registry);
  const app = render(
    createElement(EditorView, {
      initial: state,
      registry,
      color,
      unicode: true,
      validate: (s) => validateEdit(s, { registry, plugins: [], pluginDir: dir }),
      save: (m) => writeFileAtomic(file, manifestText(m), { overwrite: true }),
      ...(onExit ? { onExit } : {}),
      listFiles: () => listModelFiles(dirname(file)),
      describeFile: (path) => describePickerFile(join(dirname(file), path)),
      fileExists: existsSync,
      merge: (o) => runEditMerge(file, { ...o, registry, plugins: [], pluginDir: dir, cwd: dir, toolVersion: "0.0.0-test" }),
    }),
    { stdout: term.stdout as unknown as NodeJS.WriteStream, stdin: term.stdin as unknown as NodeJS.ReadStream, debug: true, exitOnCtrlC: false, patchConsole: false },
  );
  return { ...term, app, key: (k: string) => term.stdin.write(k) };
}

const fits = (screen: string, columns: number, rows: number) => {
  const lines = screen.replace(/\n$/, "").split("\n");
  expect(lines.length).toBeLessThanOrEqual(rows);
  for (const l of lines) expect([...l].length, l).toBeLessThanOrEqual(columns);
};

describe("stmerge edit view (in process, fake terminal)", () => {
  for (const [columns, rows] of [[80, 24], [200, 50]] as const) {
    it(`${columns}×${rows}: shows models, validates from headers, changes a weight, saves after the diff`, async () => {
      const file = manifestFile(`m${columns}.json`, ["models/a.safetensors", "models/b.safetensors"]);
      const t = open(file, columns, rows);
      try {
        let s = await until(t.screen, "valid: SD1.5, 2 models, 5 tensors");
        fits(s, columns, rows);
        expect(s).toContain("models/a.safetensors");
        expect(s).toMatch(/› {2}0 \[x\] models\/a\.safetensors.* 0\.50/);
        expect(s).toContain("a add model  s save  m merge  q quit  d dry-run  ? help");
        t.key("+");
        s = await until(t.screen, "* modified");
        expect(s).toMatch(/models\/a\.safetensors.* 0\.51/);
        expect(s).toContain("sum of included weights 1.01");
        t.key("s");
        s = await until(t.screen, "change(s)");
        fits(s, columns, rows);
        expect(s).toContain("models[0].weight: 0.5 → 0.51");
        t.key("y");
        await until(t.screen, "saved");
        const saved = JSON.parse(readFileSync(file, "utf8"));
        expect(saved.models.map((m: { weight: number }) => m.weight)).toEqual([0.51, 0.5]);
        expect(saved.output).toBe("out.safetensors");
        t.key("d");
        s = await until(t.screen, "dry-run plan");
        expect(s).toContain("plan: weighted_sum of 2 SD1.5 models");
        fits(s, columns, rows);
      } finally {
        t.app.unmount();
      }
    });
  }

  it("names a missing file, an architecture mismatch and a shape mismatch inline, and asks before quitting with unsaved changes", async () => {
    const missing = open(manifestFile("missing.json", ["models/a.safetensors", "models/gone.safetensors"]), 80, 24);
    try {
      const s = await until(missing.screen, "✗ missing");
      expect(s).toMatch(/models\/gone\.safetensors.*✗ missing/);
    } finally {
      missing.app.unmount();
    }
    const arch = open(manifestFile("arch.json", ["models/a.safetensors", "models/sd2.safetensors"]), 80, 24);
    try {
      const s = await until(arch.screen, "✗ models/sd2.safetensors: is SD2.1 (sd2), but");
      expect(s).toMatch(/models\/sd2\.safetensors.*✗ see below/);
      fits(s, 80, 24);
    } finally {
      arch.app.unmount();
    }
    const t = open(manifestFile("shape.json", ["models/a.safetensors", "models/wide.safetensors"]), 80, 24);
    try {
      const s = await until(t.screen, /✗ model\.diffusion_model\.out\.2\.bias: models\/a\.safetensors has shape \[4\],/);
      expect(s).toContain("models/wide.safetensors has [8]");
      t.key("*");
      await until(t.screen, "* modified");
      t.key("q");
      await until(t.screen, "Quit without saving?");
      t.key("n");
      await until(t.screen, "sum of included weights");
    } finally {
      t.app.unmount();
    }
  });

  it("80×24 with a block grid, help and quit: fits, no colour codes when colour is off, quit asks and ends", async () => {
    let exited: { saved: boolean } | undefined;
    const t = open(manifestFile("grid.json", ["models/a.safetensors", "models/b.safetensors"]), 80, 24, false, (r) => (exited = r));
    try {
      await until(t.screen, "valid: SD1.5");
      t.key("b");
      t.key("r");
      let s = await until(t.screen, "blocks of model 0 (SD1.x, 26");
      fits(s, 80, 24);
      expect(s).toMatch(/BASE\s+IN00\s+IN01/);
      expect(s).toMatch(/0\.00\s+0\.04\s+0\.08/);
      expect(s).toContain("OUT11");
      // Colour off (NO_COLOR, TERM=dumb): no SGR colour codes at all; focus still shows as a marker.
      expect(t.frames.at(-1)).not.toMatch(/\u001b\[(3[0-9]|9[0-7])m/);
      expect(s).toContain("›");
      t.key("?");
      s = await until(t.screen, "stmerge edit: keys");
      fits(s, 80, 24);
      t.key("?");
      await until(t.screen, "blocks of model 0");
      t.key("q");
      await until(t.screen, "Quit without saving?");
      t.key("y");
      await t.app.waitUntilExit();
      expect(exited).toEqual({ saved: false });
      expect(JSON.parse(readFileSync(join(dir, "grid.json"), "utf8")).models[0].block_weights).toBeUndefined();
    } finally {
      t.app.unmount();
    }
  });

  it("80×24: adds a model with the picker (LoRA and VAE marked and refused, Esc cancels), then merges it with its progress view", async () => {
    mkdirSync(join(dir, "models", "sub"), { recursive: true });
    mkdirSync(join(dir, "models", "loras"), { recursive: true });
    // Same layout as a and b (which are byte-identical), other values: a third parent of its own.
    await writeTinySd1Model(join(dir, "models", "sub", "c.safetensors"), { seed: 1 });
    await writeModel(join(dir, "models", "loras", "style.safetensors"), [["lora_unet_out_2.lora_down.weight", [2, 4]], ["lora_unet_out_2.lora_up.weight", [4, 2]], ["lora_unet_out_2.alpha", []]]);
    await writeModel(join(dir, "models", "kl-vae.safetensors"), [["encoder.conv_in.weight", [4, 3, 3, 3]], ["decoder.conv_out.weight", [3, 4, 3, 3]]]);
    const file = join(dir, "pick.json");
    writeFileSync(file, manifestText({ models: [{ path: "models/a.safetensors", weight: 0.5 }, { path: "models/b.safetensors", weight: 0.5 }], output: "picked.safetensors" }));
    const t = open(file, 80, 24);
    try {
      await until(t.screen, "valid: SD1.5, 2 models");
      t.key("a");
      let s = await until(t.screen, /models\/loras\/style\.safetensors +LoRA \(not a model\)/);
      s = await until(t.screen, /models\/kl-vae\.safetensors +VAE \(not a model\)/);
      fits(s, 80, 24);
      expect(s).toMatch(/models\/a\.safetensors +SD1\.5 fp16 \(in manifest\)/);
      t.key("\u001b");
      await until(t.screen, "sum of included weights");
      t.key("a");
      t.key("style");
      await until(t.screen, /1 of \d+ files[^]*LoRA \(not a model\)/);
      t.key("\r");
      s = await until(t.screen, "is a LoRA, not a checkpoint");
      for (let i = 0; i < 5; i++) t.key("\u007f");
      t.key("sub/c");
      s = await until(t.screen, /filter sub\/c_ +1 of \d+ files\n› models\/sub\/c\.safetensors +SD1\.5 fp16\n/);
      expect(s).not.toContain("is a LoRA");
      t.key("\r");
      s = await until(t.screen, "added models/sub/c.safetensors with weight 0");
      t.key("*");
      s = await until(t.screen, /models\/sub\/c\.safetensors.* 0\.10/);
      await until(t.screen, "valid: SD1.5, 3 models");
      t.key("m");
      s = await until(t.screen, "The manifest is saved first (1 change(s))");
      fits(s, 80, 24);
      t.key("y");
      s = await until(t.screen, "✓ merged");
      fits(s, 80, 24);
      const output = join(dir, "picked.safetensors");
      expect(s).toContain(`sha256  ${createHash("sha256").update(readFileSync(output)).digest("hex")}`);
      // The output's full path, wrapped over as many lines as it needs.
      expect(s.split("\n").filter((l) => /^ {2}(output {2}| {8})/.test(l)).map((l) => l.slice(10)).join("")).toBe(output);
      expect(s).toMatch(/time +\d/);
      const saved = JSON.parse(readFileSync(file, "utf8"));
      expect(saved.models[2]).toEqual({ path: "models/sub/c.safetensors", weight: 0.1, architecture: "SD1.5", precision_detected: "fp16" });
      const merged = await openSafetensors(output);
      const recipe = JSON.parse(merged.metadata.stmerge_manifest!) as { models: { path: string; weight: number }[] };
      const ancestry = JSON.parse(merged.metadata.sd_merge_models!) as Record<string, unknown>;
      await merged.close();
      // Every parent is named by its SHA-256 (hashed from the merge's own reads), as node:crypto computes it.
      const sha = (p: string) => createHash("sha256").update(readFileSync(join(dir, p))).digest("hex");
      expect(sha("models/a.safetensors")).toBe(sha("models/b.safetensors"));
      expect(Object.keys(ancestry).sort()).toEqual([sha("models/a.safetensors"), sha("models/sub/c.safetensors")].sort());
      expect(recipe.models.map((m) => [m.path, m.weight])).toEqual([["models/a.safetensors", 0.5], ["models/b.safetensors", 0.5], ["models/sub/c.safetensors", 0.1]]);
      t.key("\r");
      await until(t.screen, "sum of included weights 1.10");
    } finally {
      t.app.unmount();
    }
  });

  it("maps keys: arrows, Tab, fine and coarse steps, save and quit confirmations", () => {
    const none = { upArrow: false, downArrow: false, leftArrow: false, rightArrow: false, tab: false, shift: false, return: false, escape: false, backspace: false, delete: false, ctrl: false, pageUp: false, pageDown: false };
    const s = createEditorState("/m.json", { models: [{ path: "a", weight: 1 }] }, registry);
    expect(keyEffect(s, "", { ...none, downArrow: true })).toEqual({ type: "move", dy: 1 });
    expect(keyEffect(s, "", { ...none, tab: true, shift: true })).toEqual({ type: "next-section", back: true });
    expect(keyEffect(s, "*", none)).toEqual({ type: "adjust", sign: 1, coarse: true });
    expect(keyEffect(s, "_", none)).toEqual({ type: "adjust", sign: -1, coarse: true });
    expect(keyEffect({ ...s, mode: "confirm-save" }, "y", none)).toEqual({ type: "save" });
    expect(keyEffect({ ...s, mode: "confirm-quit" }, "n", none)).toEqual({ type: "mode", mode: "normal" });
    expect(keyEffect({ ...s, mode: "text" }, "q", none)).toEqual({ type: "text-input", text: "q" });
    expect(keyEffect(s, "a", none)).toEqual({ type: "open-picker" });
    expect(keyEffect(s, "m", none)).toEqual({ type: "merge-key" });
    const picking: EditorState = { ...s, mode: "pick" };
    expect(keyEffect(picking, "", { ...none, escape: true })).toEqual({ type: "mode", mode: "normal" });
    expect(keyEffect(picking, "q", none)).toEqual({ type: "picker-filter", text: "q" });
    expect(keyEffect(picking, "", { ...none, pageDown: true })).toEqual({ type: "picker-move", by: 10 });
    expect(keyEffect(picking, "\r", { ...none, return: true })).toEqual({ type: "picker-choose" });
    // While a merge runs, Ctrl+C, q and Esc abort it (not the editor); once it ended, q quits and Enter goes back.
    const merging: EditorState = { ...s, mode: "merge", merge: { status: "running", overwrite: false } };
    expect(keyEffect(merging, "c", { ...none, ctrl: true })).toEqual({ type: "merge-abort" });
    expect(keyEffect(merging, "q", none)).toEqual({ type: "merge-abort" });
    expect(keyEffect(merging, "s", none)).toBeUndefined();
    const ended: EditorState = { ...s, mode: "merge", merge: { status: "cancelled", error: "x" } };
    expect(keyEffect(ended, "q", none)).toEqual({ type: "request-quit" });
    expect(keyEffect(ended, "\r", { ...none, return: true })).toEqual({ type: "merge-close" });
  });
});
