import { assertNotSameFile, createSafetensorsWriter, openSafetensors, throwIfAborted, type ProgressCallback, type TensorSource } from "@stmerge/core-tensors";
import { basename } from "node:path";
import { MergeError } from "../merge-error.js";
import { CHECKPOINT_VAE_PREFIX } from "../models/vae-key-map.js";

export interface ExtractVaeOptions {
  readonly overwrite?: boolean;
  readonly onProgress?: ProgressCallback;
  readonly openSource?: (path: string) => Promise<TensorSource>;
  /** Aborts between tensors; the temp output is removed. */
  readonly signal?: AbortSignal;
}

export interface ExtractVaeResult {
  readonly outputPath: string;
  readonly tensors: number;
  readonly bytes: number;
}

/**
 * Writes a checkpoint's VAE (`first_stage_model.*`, or `vae.*` in ComfyUI/Flux files) as a
 * standalone VAE with LDM key names, streaming tensor by tensor into an atomic output.
 */
export async function extractVae(modelPath: string, outputPath: string, options: ExtractVaeOptions = {}): Promise<ExtractVaeResult> {
  await assertNotSameFile(outputPath, [modelPath]);
  const source = await (options.openSource ?? openSafetensors)(modelPath);
  try {
    const keys = source.descriptors.filter((d) => CHECKPOINT_VAE_PREFIX.test(d.name));
    if (keys.length === 0) throw new MergeError("EXTRACT_VAE_NONE", `${modelPath}: has no VAE (no first_stage_model.* or vae.* keys)`, { file: modelPath });
    const descriptors = keys.map((d) => ({ ...d, name: d.name.replace(CHECKPOINT_VAE_PREFIX, "") }));
    const bytesTotal = keys.reduce((s, d) => s + d.byteLength, 0);
    const sink = createSafetensorsWriter(outputPath, { overwrite: options.overwrite ?? false });
    await sink.begin(descriptors, { format: "pt", stmerge_extracted_from: basename(modelPath) });
    let bytesDone = 0;
    try {
      let buffer = new Uint8Array(0);
      for (const [i, d] of keys.entries()) {
        throwIfAborted(options.signal, modelPath, "VAE extraction");
        if (buffer.byteLength < d.byteLength) buffer = new Uint8Array(d.byteLength);
        const bytes = await source.read(d.name, buffer);
        await sink.write(descriptors[i]!.name, bytes);
        bytesDone += d.byteLength;
        options.onProgress?.({ phase: "extract-vae", bytesDone, bytesTotal, tensor: d.name, tensorsDone: i + 1, tensorsTotal: keys.length });
      }
      throwIfAborted(options.signal, modelPath, "VAE extraction");
      await sink.commit();
    } catch (error) {
      await sink.abort();
      throw error;
    }
    return { outputPath, tensors: keys.length, bytes: bytesTotal };
  } finally {
    await source.close();
  }
}
