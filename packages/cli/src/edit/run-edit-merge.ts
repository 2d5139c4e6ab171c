import { stat } from "node:fs/promises";
import { createHashingTap, createSequentialFileHasher } from "@stmerge/cache";
import { selectKernelBackend, type ProgressCallback } from "@stmerge/core-tensors";
import { loadManifest, runMerge, type MethodRegistry } from "@stmerge/merge-engine";
import { deviceChoice } from "../commands/merge.js";

export interface EditMergeOptions {
  /** Replace an existing output (the user said yes to it in the editor, as --overwrite does for `merge`). */
  readonly overwrite: boolean;
  readonly registry: MethodRegistry;
  /** `--plugin` modules given to `stmerge edit` (a manifest's own never load). */
  readonly plugins: readonly string[];
  readonly pluginDir: string;
  readonly cwd: string;
  readonly toolVersion: string;
  readonly signal: AbortSignal;
  readonly onProgress: ProgressCallback;
}

export interface EditMergeResult {
  readonly output: string;
  /** SHA-256 of the output, hashed as it was written. */
  readonly sha256: string | undefined;
  readonly bytes: number;
  readonly ms: number;
}

/**
 * Runs the merge of the manifest file as saved, the way `stmerge merge --manifest` does: its device,
 * merge-engine's runMerge streaming into a temp file beside the output (renamed into place on
 * success, removed on failure or when `signal` aborts), the output's SHA-256 taken while it is
 * written and unhashed inputs hashed from the merge's reads. Unlike `merge`, it does not consult or
 * write the hash cache.
 */
export async function runEditMerge(file: string, options: EditMergeOptions): Promise<EditMergeResult> {
  const started = Date.now();
  const manifest = await loadManifest(file, { cwd: options.cwd });
  const { device } = deviceChoice(undefined, manifest.raw.device, manifest.file);
  const compute = await selectKernelBackend({ device });
  const hashing = createHashingTap({ algorithms: ["sha256"] });
  try {
    const r = await runMerge(manifest, {
      overrides: { overwrite: options.overwrite },
      registry: options.registry,
      plugins: options.plugins,
      pluginDir: options.pluginDir,
      kernels: compute.backend,
      signal: options.signal,
      onProgress: options.onProgress,
      outputTap: hashing,
      // Inputs without a SHA-256 in the manifest are hashed from the merge's own reads, as `stmerge merge` does, so the output's ancestry names every parent.
      hashInput: (path, opened) => createSequentialFileHasher(path, opened ? { opened } : {}),
      toolVersion: options.toolVersion,
    });
    const hashes = await hashing.result();
    return { output: r.outputPath, sha256: hashes?.sha256 ?? undefined, bytes: (await stat(r.outputPath)).size, ms: Date.now() - started };
  } catch (error) {
    await hashing.close();
    throw error;
  } finally {
    await compute.backend.close();
  }
}
