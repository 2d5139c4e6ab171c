import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { writeFileAtomic } from "@stmerge/core-tensors";
import { createMethodRegistry, loadManifest, loadMergeMethodPlugin, type ManifestInput } from "@stmerge/merge-engine";
import { render } from "ink";
import { createElement } from "react";
import { describePickerFile } from "./describe-picker-file.js";
import { createEditorState } from "./editor-state.js";
import { EditorView } from "./editor-view.js";
import { listModelFiles } from "./list-model-files.js";
import { runEditMerge } from "./run-edit-merge.js";
import { validateEdit } from "./validate-edit.js";

export interface RunEditorOptions {
  readonly manifest: string;
  readonly cwd: string;
  readonly plugins: readonly string[];
  readonly stdin: NodeJS.ReadStream;
  readonly stdout: NodeJS.WriteStream;
  readonly color: boolean;
  readonly unicode: boolean;
  readonly signal?: AbortSignal;
  /** Recorded in a merged file's metadata. */
  readonly toolVersion: string;
}

/** The manifest as saved: 2-space JSON, as `stmerge scan` writes it. */
export const manifestText = (manifest: Record<string, unknown>): string => `${JSON.stringify(manifest, null, 2)}\n`;

/**
 * Opens the full-screen editor on a manifest (this module and ink/React load only for `edit`).
 * The manifest must load with merge-engine's loader first; saving replaces that one file, atomically.
 */
export async function runEditor(options: RunEditorOptions): Promise<{ saved: boolean }> {
  const file = resolve(options.cwd, options.manifest);
  const loaded = await loadManifest(file, { cwd: options.cwd });
  const registry = createMethodRegistry();
  for (const spec of options.plugins) for (const m of await loadMergeMethodPlugin(spec, options.cwd)) if (!registry.has(m.name)) registry.register(m);
  const initial = createEditorState(loaded.file, JSON.parse(loaded.text) as ManifestInput, registry);
  let result = { saved: false };
  // ink 6.8 has no alternate-screen option (ink 7 needs Node 22): enter and leave it ourselves.
  options.stdout.write("\u001b[?1049h");
  try {
    const app = render(
      createElement(EditorView, {
        initial,
        registry,
        color: options.color,
        unicode: options.unicode,
        validate: (s) => validateEdit(s, { registry, plugins: options.plugins, pluginDir: options.cwd, ...(options.signal ? { signal: options.signal } : {}) }),
        // Overwriting is allowed for this file only: the manifest being edited.
        save: (manifest) => writeFileAtomic(loaded.file, manifestText(manifest), { overwrite: true }),
        onExit: (r) => {
          result = r;
        },
        listFiles: () => listModelFiles(dirname(loaded.file), options.signal ? { signal: options.signal } : {}),
        describeFile: (path) => describePickerFile(resolve(dirname(loaded.file), path)),
        fileExists: existsSync,
        merge: ({ overwrite, signal, onProgress }) =>
          runEditMerge(loaded.file, { overwrite, registry, plugins: options.plugins, pluginDir: options.cwd, cwd: options.cwd, toolVersion: options.toolVersion, signal: options.signal ? AbortSignal.any([signal, options.signal]) : signal, onProgress }),
      }),
      { stdin: options.stdin, stdout: options.stdout, exitOnCtrlC: false, patchConsole: false },
    );
    options.signal?.addEventListener("abort", () => app.unmount(), { once: true });
    await app.waitUntilExit();
  } finally {
    options.stdout.write("\u001b[?1049l");
  }
  return result;
}
