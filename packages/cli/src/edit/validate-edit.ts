import { existsSync } from "node:fs";
import { dirname } from "node:path";
import { parseManifest, runMerge, type MergePlan, type MethodRegistry } from "@stmerge/merge-engine";
import { formatBytes } from "../format.js";
import { renderTable } from "../render-table.js";
import { escapeControl } from "../terminal-text.js";
import { isIncluded, manifestOf, type EditorState } from "./editor-state.js";

/** What the editor shows about the manifest as edited, from the models' headers (no tensor is read). */
export interface EditValidation {
  readonly ok: boolean;
  /** The first problem, one line (merge-engine's own message: architecture mismatch, shape mismatch, …). */
  readonly problem: string | undefined;
  /** Index (in the editor's model list) of the model the problem names, if any. */
  readonly problemModel: number | undefined;
  /** Editor model indices whose file does not exist. */
  readonly missing: readonly number[];
  /** Architecture label per editor model, where the plan knows it. */
  readonly architectures: readonly (string | undefined)[];
  readonly warnings: readonly string[];
  readonly plan: MergePlan | undefined;
  readonly outputPath: string | undefined;
}

export interface ValidateOptions {
  readonly registry: MethodRegistry;
  /** `--plugin` modules given to `stmerge edit` (a manifest's own never load). */
  readonly plugins: readonly string[];
  readonly pluginDir: string;
  readonly signal?: AbortSignal;
}

/**
 * Validates the edited manifest the way `stmerge merge --dry-run` does: merge-engine's schema,
 * then runMerge's dry run (headers opened, inputs refused, architectures and shapes compared,
 * method parameters checked, the plan built).
 */
export async function validateEdit(state: EditorState, options: ValidateOptions): Promise<EditValidation> {
  const included = state.models.map((m, i) => [m, i] as const).filter(([m]) => isIncluded(m)).map(([, i]) => i);
  const base = { plan: undefined, outputPath: undefined, warnings: [] as string[], architectures: state.models.map(() => undefined) };
  let manifest;
  try {
    manifest = parseManifest(`${JSON.stringify(manifestOf(state), null, 2)}\n`, state.file, { cwd: dirname(state.file) });
  } catch (error) {
    return { ...base, ok: false, problem: (error as Error).message, problemModel: undefined, missing: [] };
  }
  const missing = manifest.models.map((m, k) => (existsSync(m.resolvedPath) ? -1 : included[k]!)).filter((i) => i >= 0);
  const byResolved = new Map(manifest.models.map((m, k) => [m.resolvedPath, included[k]!]));
  try {
    const r = await runMerge(manifest, { dryRun: true, registry: options.registry, plugins: options.plugins, pluginDir: options.pluginDir, ...(options.signal ? { signal: options.signal } : {}) });
    const architectures = state.models.map((_, i) => r.plan.models[included.indexOf(i)]?.architecture.label);
    return { ok: true, problem: undefined, problemModel: undefined, missing, architectures, warnings: r.warnings, plan: r.plan, outputPath: r.outputPath };
  } catch (error) {
    const file = (error as { file?: unknown }).file;
    const problemModel = typeof file === "string" ? byResolved.get(file) ?? state.models.findIndex((m) => file.endsWith(String(m.entry.path))) : undefined;
    return { ...base, ok: false, problem: (error as Error).message, problemModel: problemModel === -1 ? undefined : problemModel, missing };
  }
}

const fmt = (v: unknown) => (typeof v === "number" ? String(Number(v.toFixed(4))) : JSON.stringify(v));

/** The dry-run plan as text lines (the `d` view): what `stmerge merge --dry-run` would do. */
export function planLines(v: EditValidation): string[] {
  if (!v.plan) return [`no plan: ${escapeControl(v.problem ?? "not validated yet")}`];
  const { plan } = v;
  const params = Object.entries(plan.params);
  return [
    `plan: ${escapeControl(plan.method)} of ${plan.models.length} ${plan.architecture.label} models → ${escapeControl(v.outputPath ?? "")}`,
    ...(params.length ? [`parameters  ${escapeControl(params.map(([k, val]) => `${k}=${fmt(val)}`).join(", "))}`] : []),
    `tensors ${plan.entries.length} · pruned ${plan.pruned.length} · precision ${plan.outputPrecision} · output ${formatBytes(plan.outputBytes)} · peak ≤ ${formatBytes(plan.estimatedPeakBytes)}`,
    ...v.warnings.map((w) => `warning: ${escapeControl(w)}`),
    "",
    ...renderTable(plan.blocks, [
      { header: "block", value: (b) => b.block },
      { header: "tensors", value: (b) => String(b.tensors) },
      { header: "size", value: (b) => formatBytes(b.bytes) },
      ...(plan.usesWeights ? plan.models : []).map((m) => ({ header: `w${m.index}`, value: (b: MergePlan["blocks"][number]) => fmt(b.weights[m.index]) })),
    ])
      .trimEnd()
      .split("\n"),
  ];
}
