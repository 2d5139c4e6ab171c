import { readdir, stat } from "node:fs/promises";
import { basename, join, relative, resolve, sep } from "node:path";
import { isStmergeError, openSafetensors, type ProgressCallback, type TensorSource } from "@stmerge/core-tensors";
import { MergeError } from "../merge-error.js";
import { detectArchitecture, type ArchitectureReport } from "../models/detect-architecture.js";
import { detectPrecision } from "./detect-precision.js";
import { proposeOutputName } from "./propose-output-name.js";

export interface FileHashes {
  readonly sha256: string;
  readonly crc32?: string;
}

export interface ScanOptions {
  /** Where the manifest will be written: model paths are made relative to its folder. */
  readonly manifestPath: string;
  readonly recursive?: boolean;
  readonly vae?: string | undefined;
  /** Skip unreadable files (e.g. still copying) instead of failing. */
  readonly skipErrors?: boolean;
  /** Also list files an earlier stmerge merge wrote (left out by default: a re-scan would otherwise merge its own output). */
  readonly includeMerged?: boolean;
  /** false: every weight 1.0 (the Python tool's --no-equal-weights); default 1/N. */
  readonly equalWeights?: boolean;
  /** Hashes a file (the CLI passes the cache); without it no hashes are recorded. */
  readonly hashFile?: (path: string) => Promise<FileHashes>;
  readonly openSource?: (path: string) => Promise<TensorSource>;
  readonly onProgress?: ProgressCallback;
}

export interface ScannedModel {
  readonly path: string;
  readonly report: ArchitectureReport;
  readonly precision: "fp16" | "bf16" | "fp32" | "unknown";
  readonly tensors: number;
  readonly bytes: number;
  readonly hashes: FileHashes | undefined;
}

export interface ScanResult {
  /** The manifest, in the Python tool's field order. */
  readonly manifest: Record<string, unknown>;
  readonly models: readonly ScannedModel[];
  readonly vae: ScannedModel | undefined;
  readonly skipped: readonly { readonly path: string; readonly error: string }[];
  /** Earlier merge outputs left out (their metadata says stmerge merged them). */
  readonly mergeOutputs: readonly string[];
  /** Legacy pickle checkpoints in the folder, which scan does not read (convert them first). */
  readonly legacyCheckpoints: readonly string[];
  readonly warnings: readonly string[];
}

/** Legacy checkpoints a user most likely meant to include. */
const LEGACY_CHECKPOINT = /\.ckpt$/i;

/** Whether a file's metadata says an stmerge merge wrote it. */
export function isStmergeMergeOutput(metadata: Readonly<Record<string, string>>): boolean {
  return metadata.merge_tool === "stmerge" && metadata.sd_merge_recipe !== undefined;
}

async function listModels(folder: string, recursive: boolean, legacy: string[] = []): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true })) {
    const p = join(folder, entry.name);
    if (entry.isDirectory() && recursive) out.push(...(await listModels(p, true, legacy)));
    else if (entry.isFile() && entry.name.endsWith(".safetensors")) out.push(p);
    else if (entry.isFile() && LEGACY_CHECKPOINT.test(entry.name)) legacy.push(p);
  }
  return out;
}

const convertHint = (legacy: readonly string[]) =>
  `${legacy.length} legacy checkpoint${legacy.length === 1 ? "" : "s"} not scanned (${legacy.slice(0, 3).map((p) => basename(p)).join(", ")}${legacy.length > 3 ? ", …" : ""}); convert ${legacy.length === 1 ? "it" : "them"} first: stmerge convert ${legacy.length === 1 ? legacy[0] : "<file>.ckpt"}`;

/** Manifest paths use forward slashes and are relative to the manifest's folder. */
function manifestRelative(manifestDir: string, path: string): string {
  return relative(manifestDir, path).split(sep).join("/");
}

/**
 * Builds a merge manifest from a folder of .safetensors models, reading headers only (never
 * tensor data, unless `hashFile` hashes the files): architecture, precision, tensor count, and a
 * proposed output name.
 */
export async function scanFolder(folder: string, options: ScanOptions): Promise<ScanResult> {
  const dir = resolve(folder);
  const info = await stat(dir).catch(() => undefined);
  if (!info) throw new MergeError("SCAN_NO_SUCH_FOLDER", `${folder}: no such folder`, { file: folder });
  if (!info.isDirectory()) throw new MergeError("SCAN_NOT_A_FOLDER", `${folder}: not a folder (scan takes the folder that holds the models)`, { file: folder });
  const manifestDir = resolve(options.manifestPath, "..");
  const manifestFile = resolve(options.manifestPath);
  // Code-unit order, as Python's sorted() on paths (the merge order follows it).
  const legacy: string[] = [];
  const files = (await listModels(dir, options.recursive ?? false, legacy)).filter((f) => f !== manifestFile).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  legacy.sort();
  if (files.length === 0) throw new MergeError("SCAN_NO_MODELS", `${folder}: no .safetensors files found${legacy.length ? `; ${convertHint(legacy)}` : options.recursive ? "" : " (use --recursive to look in subfolders)"}`, { file: folder });

  const open = options.openSource ?? openSafetensors;
  const inspect = async (path: string, leaveOutMerged = false): Promise<ScannedModel | "merge-output"> => {
    const source = await open(path);
    try {
      if (leaveOutMerged && isStmergeMergeOutput(source.metadata)) return "merge-output";
      return {
        path,
        report: detectArchitecture(source.descriptors, { filename: basename(path), metadata: source.metadata }),
        precision: detectPrecision(source.descriptors),
        tensors: source.descriptors.length,
        bytes: source.descriptors.reduce((s, d) => s + d.byteLength, 0),
        hashes: options.hashFile ? await options.hashFile(path) : undefined,
      };
    } finally {
      await source.close();
    }
  };

  const models: ScannedModel[] = [];
  const skipped: { path: string; error: string }[] = [];
  const mergeOutputs: string[] = [];
  for (const [i, path] of files.entries()) {
    options.onProgress?.({ phase: "scan", bytesDone: i, bytesTotal: files.length, tensor: basename(path), tensorsDone: i, tensorsTotal: files.length });
    try {
      const scanned = await inspect(path, !options.includeMerged);
      if (scanned === "merge-output") mergeOutputs.push(path);
      else models.push(scanned);
    } catch (error) {
      if (!options.skipErrors || !isStmergeError(error)) throw error;
      skipped.push({ path, error: error.message });
    }
  }
  if (models.length === 0 && mergeOutputs.length > 0 && skipped.length === 0) {
    throw new MergeError("SCAN_ONLY_MERGE_OUTPUTS", `${folder}: every .safetensors file here is an earlier stmerge merge output (${mergeOutputs.map((p) => basename(p)).join(", ")}); --include-merged scans them`, { file: folder });
  }
  if (models.length === 0) throw new MergeError("SCAN_ALL_SKIPPED", `${folder}: all ${files.length} files were skipped (${skipped[0]?.error ?? ""})`, { file: folder });

  const warnings: string[] = [];
  if (mergeOutputs.length) warnings.push(`left out ${mergeOutputs.length} earlier merge output${mergeOutputs.length === 1 ? "" : "s"} (${mergeOutputs.map((p) => basename(p)).join(", ")}); --include-merged scans them`);
  if (legacy.length) warnings.push(convertHint(legacy));
  const primary = models[0]!.report;
  for (const m of models.slice(1)) {
    if (m.report.architecture !== primary.architecture) warnings.push(`${basename(m.path)} is ${m.report.label}, ${basename(models[0]!.path)} is ${primary.label}: merge will refuse mixed architectures`);
  }
  for (const m of models) if (m.report.architecture === "vae") warnings.push(`${basename(m.path)} looks like a standalone VAE; pass it with --vae instead`);

  let vae: ScannedModel | undefined;
  if (options.vae) {
    vae = (await inspect(resolve(options.vae))) as ScannedModel;
    if (vae.report.architecture !== "vae") warnings.push(`${options.vae}: does not look like a standalone VAE (${vae.report.label})`);
  }

  const equal = options.equalWeights ?? true;
  const manifest: Record<string, unknown> = {
    models: models.map((m, index) => ({
      path: manifestRelative(manifestDir, m.path),
      weight: equal ? 1 / models.length : 1,
      architecture: m.report.label,
      index,
      ...(m.hashes ? { sha256: m.hashes.sha256, ...(m.hashes.crc32 ? { crc32: m.hashes.crc32 } : {}) } : {}),
      precision_detected: m.precision,
    })),
    vae: vae ? { path: manifestRelative(manifestDir, vae.path), ...(vae.hashes ? { sha256: vae.hashes.sha256, ...(vae.hashes.crc32 ? { crc32: vae.hashes.crc32 } : {}) } : {}), precision_detected: vae.precision } : null,
    // Named from the models included (not from skipped files or left-out merge outputs).
    output: { path: proposeOutputName(primary.label, models.map((m) => m.path)) },
    output_precision: "match",
    device: "cpu",
    prune: true,
    overwrite: false,
    merge_method: "weighted_sum",
    consensus_exponent: 4,
  };
  return { manifest, models, vae, skipped, mergeOutputs, legacyCheckpoints: legacy, warnings };
}

/** Manifest text as the Python tool writes it (indent 2), with a final newline. */
export function formatManifest(manifest: Record<string, unknown>): string {
  return `${JSON.stringify(manifest, null, 2)}\n`;
}
