import { realpath, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { createHashingTap, createSequentialFileHasher, type FileHashes } from "@stmerge/cache";
import { selectKernelBackend, type DeviceChoice, type FileIdentity } from "@stmerge/core-tensors";
import { loadManifest, manifestFromRecipe, readRecipeFromOutput, runMerge, type MergePlan, type RunMergeResult } from "@stmerge/merge-engine";
import type { Command } from "commander";
import { bannerLines } from "../banner.js";
import { addCacheOptions, lookupCachedIdentity, openCliCache, recordOutputInCache, type CacheFlags } from "../cli-cache.js";
import type { CliContext, CommandOutput } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { formatBytes, formatRate } from "../format.js";
import { renderPanel, timeRow, timingsJson, type PanelRow } from "../render-panel.js";
import { renderTable } from "../render-table.js";
import { warnLeftoverTemps } from "../leftover-temps.js";
import { escapeControl } from "../terminal-text.js";
import { locateRecipeInputs } from "../locate-recipe-inputs.js";

interface MergeFlags extends CacheFlags {
  manifest?: string;
  from?: string;
  search?: string[];
  overwrite?: boolean;
  device?: string;
  prune: boolean;
  mergeMethod?: string;
  dryRun?: boolean;
  normalize?: boolean;
  precision?: string;
  consensusExponent?: string;
  alpha?: string;
  seed?: string;
  output?: string;
  plugin?: string[];
  memory?: string;
}

const PRECISIONS = ["match", "fp16", "bf16", "fp32"] as const;

/** A device as written by a user or a manifest: auto, cpu, gpu, and the Python tool's cuda / cuda:N (the same as gpu). */
function parseDevice(value: string): DeviceChoice | undefined {
  const v = value.trim().toLowerCase();
  if (v === "auto" || v === "cpu" || v === "gpu") return v;
  return /^cuda(:\d+)?$/.test(v) ? "gpu" : undefined;
}

/**
 * The kernel device: `--device`, else the manifest's `device`; both mean the same (gpu and cuda
 * fail with one line saying what is missing when no GPU backend loads; auto falls back to the CPU
 * and the banner says why).
 */
export function deviceChoice(flag: string | undefined, manifestDevice: string, manifestFile: string): { device: DeviceChoice; from: string } {
  if (flag !== undefined) {
    const device = parseDevice(flag);
    if (!device) throw new CliError("BAD_FLAG", `--device must be auto, cpu, gpu or cuda, got ${JSON.stringify(flag)}`, { exitCode: 2 });
    return { device, from: `--device ${flag}` };
  }
  const device = parseDevice(manifestDevice);
  if (!device) throw new CliError("MANIFEST_INVALID", `${manifestFile}: device: ${JSON.stringify(manifestDevice)} is not auto, cpu, gpu or cuda`, { file: manifestFile });
  return { device, from: `the manifest's "device": ${JSON.stringify(manifestDevice)}` };
}

function intFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n)) throw new CliError("BAD_FLAG", `${name} must be an integer, got ${JSON.stringify(value)}`, { exitCode: 2 });
  return n;
}

const fmtValue = (v: unknown) => (typeof v === "number" ? String(Number(v.toFixed(4))) : JSON.stringify(v));

/** Where an input's SHA-256 came from: the manifest, the cache, or the merge's own reads. */
type HashSource = "manifest" | "cache" | "merge";

/** The --json shape of a plan: everything but the per-key entries, which are summarized. */
function planSummary(plan: MergePlan, outputPath: string, warnings: readonly string[] = plan.warnings, hashSource: (path: string) => HashSource | undefined = () => undefined): Record<string, unknown> {
  const actions: Record<string, number> = {};
  for (const e of plan.entries) actions[e.action] = (actions[e.action] ?? 0) + 1;
  return {
    command: "merge",
    output: { path: outputPath, sizeBytes: plan.outputBytes, precision: plan.outputPrecision, sha256: null as string | null },
    method: plan.method,
    params: plan.params,
    architecture: plan.architecture.label,
    models: plan.models.map((m) => ({ index: m.index, path: m.path, weight: m.weight, sha256: m.sha256 ?? null, sha256From: m.sha256 ? (hashSource(m.path) ?? "manifest") : null, architecture: m.architecture.label })),
    vae: plan.vaePath ?? null,
    blocks: plan.blocks,
    tensors: plan.entries.length,
    actions,
    notes: plan.entries.filter((e) => e.note && e.action !== "copy").map((e) => ({ key: e.key, note: e.note })).slice(0, 50),
    pruned: plan.pruned.length,
    onlyInLaterModels: plan.onlyInLaterModels.length,
    estimatedPeakBytes: plan.estimatedPeakBytes,
    warnings,
  };
}

function printPlan(out: CommandOutput, r: RunMergeResult): void {
  const { plan } = r;
  out.line(`plan: ${escapeControl(plan.method)} of ${plan.models.length} ${plan.architecture.label} models → ${escapeControl(r.outputPath)}`);
  const params = Object.entries(plan.params);
  if (params.length) out.line(`  parameters  ${escapeControl(params.map(([k, v]) => `${k}=${fmtValue(v)}`).join(", "))}`);
  out.text(
    renderTable(plan.models, [
      { header: "#", value: (m) => String(m.index) },
      { header: "model", value: (m) => m.name },
      { header: "architecture", value: (m) => m.architecture.label },
      // Weights only where the method uses them (not for add_difference, slerp, consensus).
      ...(plan.usesWeights ? [{ header: "weight", value: (m: MergePlan["models"][number]) => fmtValue(m.weight) }] : []),
      { header: "sha256", value: (m) => (m.sha256 ? m.sha256.slice(0, 10) : "hashed while merging") },
    ]),
  );
  if (plan.vaePath) out.line(`  vae         ${escapeControl(plan.vaePath)}`);
  for (const l of r.loras) out.line(`  lora        ${escapeControl(l.name)} × ${fmtValue(l.strength)} → ${l.tensorsChanged} tensor${l.tensorsChanged === 1 ? "" : "s"} changed`);
  const blockParams = plan.blocks[0] ? Object.keys(plan.blocks[0].params) : [];
  out.line("");
  out.text(
    renderTable(plan.blocks, [
      { header: "block", value: (b) => b.block },
      { header: "tensors", value: (b) => String(b.tensors) },
      { header: "size", value: (b) => formatBytes(b.bytes) },
      ...(plan.usesWeights ? plan.models : []).map((m) => ({ header: `w${m.index}`, value: (b: MergePlan["blocks"][number]) => fmtValue(b.weights[m.index]) })),
      ...blockParams.map((p) => ({ header: p, value: (b: MergePlan["blocks"][number]) => fmtValue(b.params[p]) })),
    ]),
  );
  const copies = plan.entries.filter((e) => e.action === "copy").length;
  const partial = plan.entries.filter((e) => e.action === "merge" && e.note).length;
  out.line("");
  out.line(`  tensors     ${plan.entries.length} (${plan.entries.length - copies} merged, ${copies} copied from model 0${partial ? `, ${partial} merged over fewer models` : ""})`);
  out.line(`  pruned      ${plan.pruned.length} keys${plan.onlyInLaterModels.length ? `; ${plan.onlyInLaterModels.length} keys only in later models left out` : ""}`);
  out.line(`  precision   ${plan.outputPrecision}`);
  out.line(`  output size ${formatBytes(plan.outputBytes)}`);
  out.line(`  peak memory ≤ ${formatBytes(plan.estimatedPeakBytes)} of working buffers (--memory; independent of the number of models for element-wise methods)`);
}

export function registerMergeCommand(program: Command, ctx: CliContext): void {
  const command = program
    .command("merge")
    .description("merge the models of a manifest tensor by tensor in constant memory (validates every header first)")
    .argument("[manifest]", "merge manifest (the same as --manifest)")
    .option("-m, --manifest <file>", "merge manifest (from `stmerge scan` or the Python tool)")
    .option("--from <merged>", "reproduce a merge stmerge wrote: its recipe from the file's metadata, its inputs found by SHA-256 (cache, then --search)")
    .option("--search <folder...>", "with --from: folders (and subfolders) to look for inputs the cache does not know; only files of the recorded size are hashed")
    .option("--overwrite", "replace an existing output")
    .option("--device <device>", "auto|cpu|gpu (default: the manifest's device)")
    .option("--no-prune", "keep EMA copies and schedule buffers")
    .option("--merge-method <name>", "weighted_sum, add_difference, train_difference, ties, dare, slerp, consensus, or a plugin's")
    .option("--dry-run", "validate and print the plan (blocks, weights, output size, memory) without reading any tensor")
    .option("--normalize", "rescale weights to sum to 1")
    .option("--precision <p>", "output precision: match|fp16|bf16|fp32 (default: the manifest's)")
    .option("--consensus-exponent <n>", "outlier suppression of consensus (default: the manifest's, 4)")
    .option("--alpha <α>", "two-model α: weighted_sum gives A·(1−α) + B·α (a number, or a comma-separated SuperMerger block list); add_difference's multiplier M")
    .option("--seed <n>", "seed of randomised methods (dare)")
    .option("-o, --output <file>", "output path (default: the manifest's output, relative to the manifest; with --from, <name>.remerged.safetensors beside it)")
    .option("--plugin <module...>", "load merge-method plugins (paths or package names, from the current folder; a manifest's plugins never load)")
    .option("--memory <MiB>", "working-buffer budget in MiB (default 512)")
    .option("--json", "print the plan and result as JSON");
  addCacheOptions(command)
    .addHelpText("after", "\nExamples:\n  $ stmerge merge models/merge_manifest.json --dry-run\n  $ stmerge merge -m merge.json --merge-method ties --overwrite\n  $ stmerge merge -m merge.json --plugin @stmerge/example-plugin --merge-method median\n  $ stmerge merge --from merged.safetensors --search ~/models --dry-run")
    .action(async (manifestArgument: string | undefined, options: MergeFlags, cmd: Command) => {
      const out = ctx.output(cmd);
      if (manifestArgument !== undefined) {
        if (options.manifest !== undefined) throw new CliError("BAD_FLAG", `give the manifest once: ${JSON.stringify(manifestArgument)} or --manifest ${JSON.stringify(options.manifest)}`, { exitCode: 2 });
        options.manifest = manifestArgument;
      }
      if (options.precision !== undefined && !(PRECISIONS as readonly string[]).includes(options.precision)) {
        throw new CliError("BAD_FLAG", `--precision must be one of ${PRECISIONS.join(", ")}, got ${JSON.stringify(options.precision)}`, { exitCode: 2 });
      }
      const memory = intFlag("--memory", options.memory);
      if ((options.manifest === undefined) === (options.from === undefined)) throw new CliError("BAD_FLAG", "give a manifest (stmerge merge <manifest>, or --manifest <file>) or --from <merged.safetensors>", { exitCode: 2 });
      if (options.search && !options.from) throw new CliError("BAD_FLAG", "--search goes with --from (a manifest names its inputs' paths)", { exitCode: 2 });
      const cacheFlags: CacheFlags = { ...(options.cache === false ? { cache: false } : {}), ...(options.cacheFile ? { cacheFile: options.cacheFile } : {}) };
      const reproduced = options.from === undefined ? undefined : await reproduceFrom(options.from, options, ctx, out, cacheFlags);
      const manifest = reproduced?.manifest ?? (await loadManifest(resolve(ctx.io.cwd, options.manifest!), { cwd: ctx.io.cwd }));
      const { device, from: deviceFrom } = deviceChoice(options.device, manifest.raw.device, manifest.file);
      // Hashes for the A1111 metadata: the manifest's, else the cache's when still valid for the file.
      const hashes = new Map<string, string>();
      for (const p of [...manifest.models.map((m) => m.resolvedPath), ...(manifest.vae ? [manifest.vae.resolvedPath] : [])]) {
        const known = await lookupCachedIdentity(p, ctx.io, cacheFlags);
        if (known) hashes.set(p, known.sha256);
      }
      const overrides = {
        overwrite: options.overwrite,
        prune: options.prune === false ? false : undefined,
        mergeMethod: options.mergeMethod,
        normalize: options.normalize,
        outputPrecision: options.precision as (typeof PRECISIONS)[number] | undefined,
        consensusExponent: intFlag("--consensus-exponent", options.consensusExponent),
        seed: intFlag("--seed", options.seed),
        alpha: alphaFlag(options.alpha),
        output: reproduced?.output ?? (options.output ? resolve(ctx.io.cwd, options.output) : undefined),
        device: options.device,
      };
      const common = { overrides, hashes, signal: ctx.signal, toolVersion: ctx.version, plugins: options.plugin ?? [], pluginDir: ctx.io.cwd, ...(memory ? { memoryBudgetBytes: memory * 1024 * 1024 } : {}) };
      for (const w of manifest.warnings) out.warn(w);

      if (options.dryRun) {
        const r = await runMerge(manifest, { ...common, dryRun: true });
        for (const w of r.warnings.slice(manifest.warnings.length)) out.warn(w);
        out.result({ dryRun: true, ...planSummary(r.plan, r.outputPath, r.warnings), loras: r.loras, ...(reproduced ? { from: reproduced.json } : {}) });
        printPlan(out, r);
        return;
      }

      await warnLeftoverTemps(overrides.output ?? manifest.output.resolvedPath, out);
      const compute = await selectKernelBackend({ device }).catch((error: unknown) => {
        if ((error as { code?: unknown }).code !== "GPU_UNAVAILABLE") throw error;
        throw new CliError("GPU_UNAVAILABLE", `${deviceFrom}: ${(error as Error).message}`);
      });
      try {
        out.banner(await bannerLines(ctx.io, { compute, cache: cacheFlags }, (t) => out.warn(t)));
        const started = Date.now();
        // The output is hashed as it is written (or, when inputs are hashed in the merge's pass and
        // the header comes last, read back before the rename), so recording it needs no extra step.
        const hashing = createHashingTap(cacheFlags.cache === false ? { algorithms: ["sha256"] } : {});
        // Inputs neither the manifest nor the cache knows are hashed from the merge's own reads.
        // Each hasher keeps the size and mtime its digest is true for; the cache records those.
        const hashedAs = new Map<string, { size: number; mtimeMs: number }>();
        const hashInput = async (path: string, opened: FileIdentity | undefined) => {
          const hasher = await createSequentialFileHasher(path, opened ? { opened } : {});
          hashedAs.set(path, { size: hasher.size, mtimeMs: hasher.mtimeMs });
          return hasher;
        };
        const r = await runMerge(manifest, { ...common, kernels: compute.backend, onProgress: out.progress.onProgress, outputTap: hashing, hashInput }).catch(async (error: unknown) => {
          await hashing.close();
          throw error;
        });
        out.progress.done();
        const outputHashes = await hashing.result();
        for (const w of r.plan.warnings) out.warn(w);
        const learned = new Set(r.learnedHashes.map((l) => l.path));
        const hashSource = (path: string): HashSource | undefined => (learned.has(path) ? "merge" : hashes.has(path) ? "cache" : undefined);
        let cached = "off (--no-cache)";
        if (cacheFlags.cache !== false) {
          cached = r.learnedHashes.length ? `output and ${r.learnedHashes.length} input${r.learnedHashes.length === 1 ? "" : "s"} recorded` : "output recorded";
          await recordMergeInCache(r, hashedAs, outputHashes, ctx, cacheFlags, (t) => out.warn(t)).catch((error: Error) => {
            cached = "not recorded (see warning)";
            out.warn(`could not record the merge in the cache: ${escapeControl(error.message)}`);
          });
        }
        const ms = Date.now() - started;
        const phases = out.progress.finishedPhases();
        const summary = planSummary(r.plan, r.outputPath, r.warnings, hashSource);
        out.result({
          ...summary,
          dryRun: false,
          output: { ...(summary.output as object), sizeBytes: (await stat(r.outputPath)).size, sha256: outputHashes?.sha256 ?? null },
          // Bytes of each input the hasher read itself: what the merge skipped (pruned keys) or read out of file order.
          hashedDuringMerge: r.learnedHashes.map((l) => ({ path: l.path, sha256: l.sha256, bytesReadAgain: l.bytesReadAgain })),
          timings: timingsJson(ms, phases),
          ...(reproduced ? { from: reproduced.json } : {}),
        });
        const t = out.theme;
        const vaeTensors = r.plan.entries.filter((e) => e.action === "vae").length;
        const rows: PanelRow[] = [
          ["output", t.path(escapeControl(r.outputPath))],
          ["merged", `${t.number(String(r.plan.models.length))} ${r.plan.architecture.label} models with ${t.label(r.plan.method)} ${t.dim(`(${r.plan.entries.length} tensors, ${r.plan.pruned.length} pruned)`)}`],
          ...(r.plan.vaePath ? [["vae", `${t.path(escapeControl(basename(r.plan.vaePath)))} baked in (${vaeTensors} tensor${vaeTensors === 1 ? "" : "s"})`] as PanelRow] : []),
          ...r.loras.map((l): PanelRow => ["lora", `${t.path(escapeControl(l.name))} × ${fmtValue(l.strength)} baked in (${l.tensorsChanged} tensor${l.tensorsChanged === 1 ? "" : "s"})`]),
          // The parents as sd_merge_models records them, and where each SHA-256 came from.
          ...r.plan.models.map((m): PanelRow => [`input ${m.index}`, `${m.sha256 ? t.hash(m.sha256.slice(0, 12)) : "unknown"} ${t.path(escapeControl(m.name))} ${t.dim(`(${hashSourceText(m.sha256 ? (hashSource(m.path) ?? "manifest") : undefined)})`)}`]),
          ["size", `${t.number(formatBytes(r.bytesWritten))} ${t.dim(`(${formatRate((r.bytesWritten / Math.max(ms, 1)) * 1000)} written)`)}`],
          ["compute", escapeControl(compute.backend.description)],
          ...(outputHashes?.sha256 ? [["sha256", t.hash(outputHashes.sha256)] as PanelRow] : []),
          ["time", timeRow(ms, phases, t)],
          ["cache", cached],
          ["next", `stmerge inspect ${escapeControl(basename(r.outputPath))} ${t.dim("(recipe and manifest are in its metadata)")}`],
        ];
        out.text(renderPanel(`${t.success(t.glyphs.ok)} merged`, rows, t, out.columns));
      } finally {
        await compute.backend.close();
      }
    });
}

const hashSourceText = (source: HashSource | undefined) => (source === "merge" ? "hashed while merging" : source === "cache" ? "from the cache" : source === "manifest" ? "from the manifest" : "not hashed");

/**
 * Records the output and the inputs whose SHA-256 the merge learned (so the next merge of them
 * takes the fast path and `merge --from` finds them), with one locked cache write.
 */
async function recordMergeInCache(r: RunMergeResult, hashedAs: ReadonlyMap<string, { size: number; mtimeMs: number }>, outputHashes: FileHashes | undefined, ctx: CliContext, cacheFlags: CacheFlags, warn: (text: string) => void): Promise<void> {
  const recorder = await openCliCache(ctx.io, cacheFlags, warn).recorder();
  for (const l of r.learnedHashes) {
    const architecture = r.plan.models.find((m) => m.path === l.path)?.architecture;
    const extra = architecture && architecture.architecture !== "unknown" ? { extra: { architecture: architecture.label } } : {};
    const stats = hashedAs.get(l.path);
    await recorder.record(l.path, { hashes: { sha256: l.sha256 }, ...extra, ...(stats ? { hashedAs: stats } : {}) });
  }
  await recordOutputInCache(r.outputPath, ctx.io, { ...cacheFlags, ...(outputHashes ? { hashes: outputHashes } : {}), extra: { architecture: r.plan.architecture.label }, warn, recorder });
  await recorder.flush();
}

/**
 * `--from`: the recipe of a merged file (header only), its inputs located by SHA-256 (cache, then
 * --search), and the manifest to run with them. The output defaults to `<name>.remerged.safetensors`
 * beside the merged file, and is never the merged file itself (not even with --overwrite).
 */
async function reproduceFrom(from: string, options: MergeFlags, ctx: CliContext, out: CommandOutput, cacheFlags: CacheFlags) {
  const source = resolve(ctx.io.cwd, from);
  const recipe = await readRecipeFromOutput(source, { pluginsGiven: (options.plugin ?? []).length > 0 });
  const inputs = [...recipe.models, ...(recipe.vae ? [recipe.vae] : [])];
  const { located, hashed } = await locateRecipeInputs(inputs, { io: ctx.io, cache: cacheFlags, search: options.search ?? [], exclude: source, signal: ctx.signal, onProgress: out.progress.onProgress, warn: (t) => out.warn(t) });
  out.progress.done();
  const output = options.output ? resolve(ctx.io.cwd, options.output) : join(dirname(source), `${basename(source).replace(/\.safetensors$/i, "")}.remerged.safetensors`);
  const realOrSelf = (p: string) => realpath(p).catch(() => p);
  if ((await realOrSelf(output)) === (await realOrSelf(source))) throw new CliError("MERGE_OUTPUT_IS_SOURCE", `${source}: the output would replace the merged file being reproduced; name another with -o`, { file: source });
  const models = located.filter((l) => l.input.role === "model").map((l) => l.path);
  const vae = located.find((l) => l.input.role === "vae")?.path;
  const manifest = manifestFromRecipe(recipe, { models, vae });
  out.line(`recipe: ${escapeControl(recipe.method)} of ${recipe.models.length} models from ${escapeControl(source)}${hashed ? ` (${hashed} file(s) hashed while searching)` : ""}`);
  for (const l of located) out.line(`  ${l.input.role === "vae" ? "vae" : `#${l.input.index}`}  ${l.input.sha256.slice(0, 10)}  ${escapeControl(l.input.name)} ← ${escapeControl(l.path)} (${l.foundBy})`);
  out.line("");
  const json = { path: source, recipeMethod: recipe.method, hashedWhileSearching: hashed, inputs: located.map((l) => ({ index: l.input.index, role: l.input.role, sha256: l.input.sha256, name: l.input.name, path: l.path, foundBy: l.foundBy })) };
  return { manifest, output, json };
}

/** `--alpha 0.3` or `--alpha 0,0.1,…` (a SuperMerger block list). */
function alphaFlag(value: string | undefined): number | number[] | undefined {
  if (value === undefined) return undefined;
  const parts = value.split(",").map((v) => v.trim());
  const numbers = parts.map(Number);
  if (parts.some((p) => p === "") || numbers.some((n) => !Number.isFinite(n))) throw new CliError("BAD_FLAG", `--alpha takes a number or a comma-separated list of numbers, got ${JSON.stringify(value)}`, { exitCode: 2 });
  return numbers.length === 1 ? numbers[0] : numbers;
}
