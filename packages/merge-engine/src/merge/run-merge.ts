import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { basename, dirname, isAbsolute, relative, resolve } from "node:path";
import { assertNotSameFile, createSafetensorsWriter, tapSourceReads, throwIfAborted, type FileIdentity, type InputReadTap, type KernelBackend, type OutputByteTap, type ProgressCallback, type TensorSource } from "@stmerge/core-tensors";
import { confineManifestOutput } from "../manifest/confine-manifest-output.js";
import type { LoadedManifest } from "../manifest/load-manifest.js";
import { MergeError } from "../merge-error.js";
import { loadMergeMethodPlugin } from "../methods/load-method-plugin.js";
import { createMethodRegistry, type MethodRegistry } from "../methods/method-registry.js";
import { buildMergePlan } from "./build-merge-plan.js";
import { legacyModelHash } from "./legacy-model-hash.js";
import { resolveAlpha, type AlphaValue } from "./resolve-alpha.js";
import { openMergeInput } from "./open-merge-input.js";
import { executeMergePlan, type ExecuteMergeResult } from "./execute-merge-plan.js";
import { buildMergeMetadata } from "./merge-metadata.js";
import { MERGE_ENGINE_VERSION } from "../engine-version.js";
import { planDescriptors, type MergePlan } from "./merge-plan.js";
import { loadLora } from "../lora/load-lora.js";
import { planLoraBake, refuseChunkedDora, refuseUnplaced, type LoraBakePlan } from "../lora/bake-lora.js";

/** Command-line settings that override the manifest for this run (the manifest file is never rewritten). */
export interface MergeOverrides {
  readonly overwrite?: boolean | undefined;
  readonly prune?: boolean | undefined;
  readonly mergeMethod?: string | undefined;
  readonly normalize?: boolean | undefined;
  readonly outputPrecision?: "match" | "fp16" | "bf16" | "fp32" | undefined;
  readonly consensusExponent?: number | undefined;
  /** Two-model α (`--alpha`): scalar or per-block values; see `resolveAlpha`. */
  readonly alpha?: AlphaValue | undefined;
  readonly seed?: number | undefined;
  readonly output?: string | undefined;
  readonly device?: string | undefined;
}

export interface RunMergeOptions {
  /** Needed unless `dryRun`; the CLI creates it from `--device`. */
  readonly kernels?: KernelBackend | undefined;
  readonly overrides?: MergeOverrides;
  readonly registry?: MethodRegistry;
  /** Plugin modules named by the user (`--plugin`), resolved from `pluginDir`. A manifest never names code to load. */
  readonly plugins?: readonly string[];
  /** The user's working folder, where `plugins` paths and package names resolve (default: process.cwd()). */
  readonly pluginDir?: string;
  /** SHA-256 of files by absolute path (the CLI gets them from the cache); manifest hashes are used otherwise. */
  readonly hashes?: ReadonlyMap<string, string>;
  /** Opens an input by path (headers only); default `openMergeInput`: safetensors or a legacy checkpoint via safe-pickle. */
  readonly openSource?: (path: string) => Promise<TensorSource>;
  readonly dryRun?: boolean;
  readonly onProgress?: ProgressCallback;
  /** Recorded as `merge_tool_version`; default: merge-engine's own version. */
  readonly toolVersion?: string;
  readonly memoryBudgetBytes?: number;
  readonly timestamp?: string;
  readonly signal?: AbortSignal;
  /**
   * Sees every byte of the output in file order (the CLI hashes the output this way): as it is
   * written, or, when input hashes are learned during the merge (`hashInput`), read back from the
   * finished temp file before the rename (progress phase "hash output").
   */
  readonly outputTap?: OutputByteTap;
  /**
   * Opens a hasher for an input (model or VAE) whose SHA-256 neither `hashes` nor the manifest
   * gives; the CLI passes the cache's `createSequentialFileHasher`. Every read of a safetensors
   * input is handed to it, and what the merge does not read is hashed at the end (progress phase
   * "hash inputs"); a checkpoint input (its reads are decoded storages) is hashed whole alongside
   * the merge (phase "hash checkpoints"). The header, which holds the hashes, is then written last
   * (see `finalMetadata` of core-tensors' writer). Without it such inputs are recorded as unknown.
   * `opened` is the file the merge opened at that path (its source's `fileIdentity`): the hasher
   * must refuse a path replaced since, or its digest would mix two files' bytes.
   */
  readonly hashInput?: (path: string, opened: FileIdentity | undefined) => Promise<InputReadTap>;
}

/** An input's SHA-256 learned in the merge's own pass. */
export interface LearnedInputHash {
  readonly path: string;
  readonly sha256: string;
  /** Bytes the hasher read itself besides the merge's reads (what the merge skipped or read out of order). */
  readonly bytesReadAgain: number;
}

export interface RunMergeResult {
  readonly plan: MergePlan;
  readonly outputPath: string;
  readonly dryRun: boolean;
  readonly warnings: readonly string[];
  readonly bytesWritten: number;
  /** Where the executor's time went (absent for dry runs). */
  readonly timings?: ExecuteMergeResult["timings"];
  /** The manifest's LoRAs, baked into the merged tensors: how many output tensors each changes. */
  readonly loras: readonly { readonly name: string; readonly path: string; readonly sha256: string; readonly strength: number; readonly tensorsChanged: number }[];
  /** The manifest as run (overrides applied), also stored in the output's metadata. */
  readonly effectiveManifest: Record<string, unknown>;
  /** Inputs whose SHA-256 was learned during this merge (`hashInput`); their hashes are also in `plan.models`. */
  readonly learnedHashes: readonly LearnedInputHash[];
}

const isPathSpecifier = (spec: string) => spec.startsWith(".") || isAbsolute(spec);

/**
 * A manifest's `plugins` are never imported: a downloaded manifest must not run code. When it
 * names plugins the user has not also given with `--plugin`, the merge stops and says which
 * flags would load them (URLs cannot be loaded at all).
 */
function refuseManifestPlugins(manifest: LoadedManifest, given: readonly string[], pluginDir: string): void {
  const named = manifest.raw.plugins ?? [];
  if (named.length === 0) return;
  const loaded = new Set(given.map((g) => (isPathSpecifier(g) ? resolve(pluginDir, g) : g)));
  const flags: string[] = [];
  for (const spec of named) {
    if (/^[a-z][a-z0-9+.-]+:/i.test(spec) && !isAbsolute(spec)) {
      throw new MergeError("MANIFEST_PLUGIN_REFUSED", `${manifest.file}: plugins entry ${JSON.stringify(spec.slice(0, 60))} is a URL; plugins never load from a manifest, and never from a URL`, { file: manifest.file });
    }
    const target = isPathSpecifier(spec) ? resolve(manifest.dir, spec) : spec;
    if (loaded.has(target)) continue;
    const rel = relative(pluginDir, target);
    const flag = !isPathSpecifier(spec) ? spec : isAbsolute(rel) ? target : rel.startsWith("..") ? rel : `./${rel}`;
    flags.push(`--plugin ${/\s/.test(flag) ? JSON.stringify(flag) : flag}`);
  }
  if (flags.length) {
    throw new MergeError("MANIFEST_PLUGINS_NOT_LOADED", `${manifest.file}: the manifest names plugins, which never load from a manifest; if you trust that code, run again with ${flags.join(" ")}`, { file: manifest.file });
  }
}

/**
 * Runs a manifest: loads the user's plugins, opens every input (headers only), validates and plans, then,
 * unless `dryRun`, streams the merge into a temp file renamed onto the output on success.
 */
export async function runMerge(manifest: LoadedManifest, options: RunMergeOptions = {}): Promise<RunMergeResult> {
  const o = options.overrides ?? {};
  const raw = manifest.raw;
  const registry = options.registry ?? createMethodRegistry();
  const pluginDir = options.pluginDir ?? process.cwd();
  refuseManifestPlugins(manifest, options.plugins ?? [], pluginDir);
  for (const spec of options.plugins ?? []) for (const m of await loadMergeMethodPlugin(spec, pluginDir)) if (!registry.has(m.name)) registry.register(m);

  const method = registry.get(o.mergeMethod ?? raw.merge_method);
  const params: Record<string, unknown> = { ...(raw.merge_params ?? {}) };
  // Manifest fields of the Python tool that fill a method parameter (consensus_exponent → exponent); the flag wins.
  const fieldOverrides: Readonly<Record<string, unknown>> = { consensus_exponent: o.consensusExponent };
  for (const [param, field] of Object.entries(method.manifestFields ?? {}) as [string, string][]) {
    if (params[param] === undefined) params[param] = fieldOverrides[field] ?? (raw as Record<string, unknown>)[field];
  }
  if (o.normalize) {
    // Said about the flag, not as an unknown merge_params key the user never wrote.
    if (method.normalizable !== true) throw new MergeError("MERGE_UNKNOWN_PARAM", `--normalize: ${method.name} does not rescale weights (weighted_sum does)`, { details: { key: "normalize", method: method.name } });
    params.normalize = true;
  }
  // The two-model α (flag, else manifest): weighted_sum's A·(1−α) + B·α, or add_difference's multiplier.
  const alpha = o.alpha ?? raw.alpha;
  const resolved = alpha === undefined ? undefined : resolveAlpha(alpha, method, manifest.models, params, raw.block_params ?? {});
  const models = resolved?.models ?? manifest.models;
  if (resolved) Object.assign(params, resolved.params);
  const blockParams = resolved?.blockParams ?? raw.block_params;
  // One seed drives the random streams: the flag, else the manifest's `seed`, else a `seed` method parameter.
  const seed = o.seed ?? raw.seed ?? (typeof params.seed === "number" ? params.seed : 0);
  if (method.seeded) params.seed = seed;
  // Replacing a file is the user's decision (--overwrite), never the manifest's.
  const overwrite = o.overwrite ?? false;
  const prune = o.prune ?? raw.prune;
  const outputPrecision = o.outputPrecision ?? raw.output_precision;
  const outputPath = o.output ? resolve(o.output) : confineManifestOutput(manifest);

  const effectiveManifest: Record<string, unknown> = {
    ...raw,
    merge_method: method.name,
    merge_params: params,
    prune,
    overwrite,
    output_precision: outputPrecision,
    ...(o.device ? { device: o.device } : {}),
    ...(o.output ? { output: { path: o.output } } : {}),
    ...(method.seeded ? { seed } : {}),
    ...(alpha !== undefined ? { alpha } : {}),
  };

  const inputPaths = manifest.models.map((m) => m.resolvedPath);
  await assertNotSameFile(outputPath, [...inputPaths, ...(manifest.vae ? [manifest.vae.resolvedPath] : []), ...manifest.loras.map((l) => l.resolvedPath)]);
  if (!existsSync(dirname(outputPath)) || !statSync(dirname(outputPath)).isDirectory()) {
    throw new MergeError("MERGE_OUTPUT_DIR_MISSING", `${outputPath}: output folder ${dirname(outputPath)} does not exist`, { file: outputPath });
  }
  const outputWarnings: string[] = [];
  if (raw.overwrite && o.overwrite === undefined) outputWarnings.push(`${manifest.file}: the manifest's "overwrite": true is ignored; only --overwrite replaces an existing output`);
  if (!overwrite && existsSync(outputPath)) {
    const message = `${outputPath}: output already exists (use --overwrite to replace it)`;
    if (!options.dryRun) throw new MergeError("MERGE_OUTPUT_EXISTS", message, { file: outputPath });
    outputWarnings.push(message);
  }

  const open = options.openSource ?? openMergeInput;
  const sources: TensorSource[] = [];
  const hashers = new Map<string, InputReadTap>();
  let vaeSource: TensorSource | undefined;
  try {
    for (const p of inputPaths) sources.push(await open(p));
    if (manifest.vae) vaeSource = await open(manifest.vae.resolvedPath);
    const sha = (path: string, given: string | undefined) => options.hashes?.get(path) ?? given;
    const plan = buildMergePlan(
      models.map((m, i) => ({
        name: basename(m.resolvedPath),
        path: m.resolvedPath,
        descriptors: sources[i]!.descriptors,
        metadata: sources[i]!.metadata,
        weight: m.weight,
        blockWeights: m.blockWeights,
        sha256: sha(m.resolvedPath, m.sha256),
        declaredArchitecture: m.architecture,
      })),
      {
        method,
        params,
        ...(blockParams && Object.keys(blockParams).length ? { blockParams } : {}),
        outputPrecision,
        prune,
        ...(vaeSource ? { vae: { path: vaeSource.path, descriptors: vaeSource.descriptors } } : {}),
        ...(raw.time_embed_block ? { timeEmbedBlock: raw.time_embed_block } : {}),
        ...(options.memoryBudgetBytes ? { memoryBudgetBytes: options.memoryBudgetBytes } : {}),
        seed,
      },
    );
    const warnings = [...manifest.warnings, ...outputWarnings, ...(resolved?.warnings ?? []), ...plan.warnings];
    // LoRAs are placed on the merge's output keys and refused whole, before any model tensor is read.
    const loraPlan = manifest.loras.length ? await planManifestLoras(manifest, plan, outputPath, open) : undefined;
    const loras = (loraPlan?.inputs ?? []).map(({ lora, strength }, input) => ({
      name: lora.name,
      path: lora.path,
      sha256: lora.sha256,
      strength,
      tensorsChanged: [...loraPlan!.byKey.values()].filter((ps) => ps.some((p) => p.input === input)).length,
    }));
    if (options.dryRun) return { plan, outputPath, dryRun: true, warnings, bytesWritten: 0, loras, effectiveManifest, learnedHashes: [] };
    if (!options.kernels) throw new MergeError("MERGE_NO_KERNELS", "a kernel backend is needed to run a merge");

    // Inputs of unknown SHA-256 are hashed from the merge's own reads (one hasher per file).
    const vaePath = manifest.vae?.resolvedPath;
    const known = new Map<string, string | undefined>([...plan.models.map((m) => [m.path, m.sha256] as const), ...(vaePath ? [[vaePath, sha(vaePath, manifest.vae!.sha256)] as const] : [])]);
    const openedAs = new Map<string, FileIdentity | undefined>(inputPaths.map((p, i) => [p, sources[i]!.fileIdentity]));
    if (vaePath && vaeSource) openedAs.set(vaePath, vaeSource.fileIdentity);
    if (options.hashInput) for (const [p, h] of known) if (!h && !hashers.has(p)) hashers.set(p, await options.hashInput(p, openedAs.get(p)));
    const readSources = sources.map((s, i) => (hashers.has(inputPaths[i]!) ? tapSourceReads(s, hashers.get(inputPaths[i]!)!) : s));
    const readVae = vaeSource && vaePath && hashers.has(vaePath) ? tapSourceReads(vaeSource, hashers.get(vaePath)!) : vaeSource;
    // Checkpoint inputs hand their hasher nothing (their reads are decoded storages, not the
    // file's bytes): they are hashed whole alongside the merge rather than after it.
    const alongside = hashAlongside(hashers, [...sources, ...(vaeSource ? [vaeSource] : [])], options.onProgress, options.signal);

    const timestamp = options.timestamp ?? new Date().toISOString();
    const legacyHashes = await Promise.all(inputPaths.map((p) => legacyModelHash(p)));
    const metadataWith = (hashOf: (path: string) => string | undefined, ancestryLimitBytes?: number): Record<string, string> => {
      const metadata = buildMergeMetadata(withHashes(plan, hashOf), {
        parentMetadata: sources.map((s) => s.metadata),
        manifest: effectiveManifest,
        vae: manifest.vae ? { name: basename(manifest.vae.resolvedPath), sha256: hashOf(manifest.vae.resolvedPath), sizeBytes: statSync(manifest.vae.resolvedPath).size } : undefined,
        toolVersion: options.toolVersion ?? MERGE_ENGINE_VERSION,
        timestamp,
        outputName: basename(outputPath),
        legacyHashes,
        inputSizes: inputPaths.map((p) => statSync(p).size),
        ...(ancestryLimitBytes !== undefined ? { ancestryLimitBytes } : {}),
      });
      // Recorded as `lora bake` records them.
      if (loraPlan) metadata.stmerge_loras = JSON.stringify(loras.map(({ name, sha256, strength }) => ({ name, sha256, strength })));
      return metadata;
    };
    // Until the hashes are known the header holds random 64-hex placeholders, the length of a
    // SHA-256 (so the header keeps its length and no tensor moves), rewritten before the rename.
    const placeholders = new Map([...hashers.keys()].map((p) => [p, randomBytes(32).toString("hex")]));
    const metadata = metadataWith((p) => known.get(p) ?? placeholders.get(p));
    const learned = new Map<string, LearnedInputHash>();
    const finalMetadata = async (): Promise<Record<string, string>> => {
      await hashInputs(hashers, alongside, learned, options.onProgress, options.signal);
      return fitMetadata(metadata, (limit) => metadataWith((p) => known.get(p) ?? learned.get(p)?.sha256, limit));
    };
    const sink = createSafetensorsWriter(outputPath, {
      overwrite,
      ...(options.outputTap ? { tap: options.outputTap } : {}),
      ...(hashers.size ? { finalMetadata, onProgress: options.onProgress, signal: options.signal } : {}),
    });
    const result = await executeMergePlan(plan, { sources: readSources, vaeSource: readVae, sink, kernels: options.kernels, method, metadata, onProgress: options.onProgress, signal: options.signal, loras: loraPlan });
    const done = withHashes(plan, (p) => known.get(p) ?? learned.get(p)?.sha256);
    return { plan: done, outputPath, dryRun: false, warnings, bytesWritten: result.bytesWritten, timings: result.timings, loras, effectiveManifest, learnedHashes: [...learned.values()] };
  } finally {
    await Promise.all([...sources, ...(vaeSource ? [vaeSource] : []), ...hashers.values()].map((s) => s.close().catch(() => undefined)));
  }
}

/** The plan with the models' SHA-256 as `hashOf` gives them (those it does not know keep theirs). */
function withHashes(plan: MergePlan, hashOf: (path: string) => string | undefined): MergePlan {
  return { ...plan, models: plan.models.map((m) => ({ ...m, sha256: hashOf(m.path) ?? m.sha256 })) };
}

/** Starts hashing, whole and at once, the inputs whose sources have no file offsets (progress phase "hash checkpoints"). */
function hashAlongside(hashers: ReadonlyMap<string, InputReadTap>, sources: readonly TensorSource[], onProgress: ProgressCallback | undefined, signal: AbortSignal | undefined): Map<string, Promise<string>> {
  const paths = [...new Set(sources.filter((s) => !s.fileOffsetOf && hashers.has(s.path)).map((s) => s.path))];
  const total = paths.reduce((n, p) => n + hashers.get(p)!.bytesLeft, 0);
  const done = new Map<string, number>();
  const runs = new Map<string, Promise<string>>();
  for (const path of paths) {
    const run = hashers.get(path)!.finish({
      signal,
      onProgress: (e) => {
        done.set(path, e.bytesDone);
        onProgress?.({ phase: "hash checkpoints", bytesDone: [...done.values()].reduce((a, b) => a + b, 0), bytesTotal: total, detail: basename(path) });
      },
    });
    // Awaited (and its failure thrown) when the hashes are collected.
    run.catch(() => undefined);
    runs.set(path, run);
  }
  return runs;
}

/**
 * Finishes the input hashers one after another (the rest of each file the merge did not read in
 * order), as one progress phase over all of them (none when the merge's reads covered everything);
 * those already hashing alongside the merge are awaited.
 */
async function hashInputs(hashers: ReadonlyMap<string, InputReadTap>, alongside: ReadonlyMap<string, Promise<string>>, learned: Map<string, LearnedInputHash>, onProgressGiven: ProgressCallback | undefined, signal: AbortSignal | undefined): Promise<void> {
  const total = [...hashers].reduce((n, [p, h]) => n + (alongside.has(p) ? 0 : h.bytesLeft), 0);
  const onProgress = total > 0 ? onProgressGiven : undefined;
  let before = 0;
  onProgress?.({ phase: "hash inputs", bytesDone: 0, bytesTotal: total, itemsDone: 0, itemsTotal: hashers.size });
  for (const [path, hasher] of hashers) {
    throwIfAborted(signal, path, "hashing the merge's inputs");
    const early = alongside.get(path);
    if (early) {
      learned.set(path, { path, sha256: await early, bytesReadAgain: hasher.bytesReadItself });
      continue;
    }
    const left = hasher.bytesLeft;
    const sha256 = await hasher.finish({ signal, onProgress: (e) => onProgress?.({ phase: "hash inputs", bytesDone: before + e.bytesDone, bytesTotal: total, detail: basename(path), itemsDone: learned.size, itemsTotal: hashers.size }) });
    before += left;
    learned.set(path, { path, sha256, bytesReadAgain: hasher.bytesReadItself });
  }
  onProgress?.({ phase: "hash inputs", bytesDone: total, bytesTotal: total, itemsDone: hashers.size, itemsTotal: hashers.size });
}

/**
 * The final metadata, no longer than the provisional one it replaces (the header's room is fixed):
 * the hashes have the placeholders' length, but a learned hash may match an entry of a parent's
 * ancestry, which then changes what fits under the ancestry cap; the cap shrinks until it fits.
 */
function fitMetadata(provisional: Readonly<Record<string, string>>, build: (ancestryLimitBytes?: number) => Record<string, string>): Record<string, string> {
  const room = Buffer.byteLength(JSON.stringify(provisional));
  let limit = (provisional.sd_merge_models ?? "").length;
  for (;;) {
    const metadata = build(limit);
    const excess = Buffer.byteLength(JSON.stringify(metadata)) - room;
    if (excess <= 0 || limit === 0) return metadata;
    limit = Math.max(0, limit - excess);
  }
}

/** Loads the manifest's LoRAs and places their modules on the merge's output tensors; refuses any module left out. */
async function planManifestLoras(manifest: LoadedManifest, plan: MergePlan, outputPath: string, open: (path: string) => Promise<TensorSource>): Promise<LoraBakePlan> {
  const inputs = [];
  for (const l of manifest.loras) inputs.push({ lora: await loadLora(l.resolvedPath, open), strength: l.strength });
  const loraPlan = planLoraBake({ path: outputPath, descriptors: planDescriptors(plan) }, inputs);
  refuseUnplaced(loraPlan, outputPath, "");
  refuseChunkedDora(loraPlan, outputPath);
  return loraPlan;
}
