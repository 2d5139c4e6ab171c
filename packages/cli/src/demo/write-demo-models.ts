import { createHash } from "node:crypto";
import { join } from "node:path";
import { brotliDecompressSync } from "node:zlib";
import { createSafetensorsWriter, DTYPE_SIZE, encodeFromF32, shapeElementCount, writeFileAtomic, type DType, type TensorDescriptor } from "@stmerge/core-tensors";
import { DEMO_CHECKPOINT_BROTLI_BASE64, DEMO_CHECKPOINT_SHA256 } from "./demo-checkpoint.js";
import { sd1DemoLayout, type DemoTensorSpec } from "./demo-layout.js";
import { demoTensorValues, hashString } from "./demo-values.js";

export interface DemoModel {
  readonly name: string;
  readonly path: string;
  readonly bytes: number;
}

/** Which tensors a trained SD1.5 checkpoint shares with the demo: everything but the EMA copies. */
function isInferenceTensor(spec: DemoTensorSpec): boolean {
  return spec.component !== "ema";
}

/** Tensor bytes of a demo model: floats varied per model, integer buffers (position_ids) as in real checkpoints. */
function demoTensorBytes(spec: DemoTensorSpec, modelName: string, variation: number, floatDtype: DType = "F32"): Uint8Array {
  const count = shapeElementCount(spec.shape);
  if (spec.dtype === "I64") {
    const ints = new BigInt64Array(count);
    for (let i = 0; i < count; i++) ints[i] = BigInt(i % (spec.shape[spec.shape.length - 1] ?? 1));
    return new Uint8Array(ints.buffer);
  }
  if (spec.dtype === "I32") return new Uint8Array(new Int32Array(count).fill(1).buffer);
  const values = demoTensorValues(spec.name, count, hashString(modelName), variation);
  return floatDtype === "F32" ? new Uint8Array(values.buffer) : encodeFromF32(values, floatDtype);
}

/**
 * Writes small SD1.5-layout models (real key names, shrunk shapes, F16 as published models are)
 * that differ like fine-tunes of one base model, so merging them is meaningful.
 */
export async function writeDemoSafetensorsModels(dir: string, names: readonly string[] = ["demo-anime", "demo-photo"]): Promise<DemoModel[]> {
  const specs = sd1DemoLayout().filter(isInferenceTensor);
  const models: DemoModel[] = [];
  for (const [index, name] of names.entries()) {
    const path = join(dir, `${name}.safetensors`);
    const sink = createSafetensorsWriter(path);
    const descriptors: TensorDescriptor[] = specs.map((s) => {
      const dtype = s.dtype === "I64" ? "I64" : "F16";
      return { name: s.name, dtype, shape: s.shape, byteLength: shapeElementCount(s.shape) * DTYPE_SIZE[dtype] };
    });
    await sink.begin(descriptors, { "modelspec.title": name, "modelspec.architecture": "stable-diffusion-v1", "stmerge.demo": "true" });
    try {
      for (const spec of specs) await sink.write(spec.name, demoTensorBytes(spec, name, 1 + index, "F16"));
    } catch (error) {
      await sink.abort();
      throw error;
    }
    await sink.commit();
    models.push({ name, path, bytes: sink.layout?.totalSize ?? 0 });
  }
  return models;
}

/**
 * Writes the base model as a legacy PyTorch checkpoint, the way old SD1.5 `.ckpt` files ship:
 * F32, wrapped in `state_dict`, with EMA copies and training counters that convert prunes. The
 * file was written by real `torch.save` (tools/fixtures/demo_checkpoint.py) and travels in the
 * bundle compressed; stmerge itself never writes pickles.
 */
export async function writeDemoLegacyCheckpoint(dir: string, name = "demo-base"): Promise<DemoModel> {
  const path = join(dir, `${name}.ckpt`);
  const bytes = brotliDecompressSync(Buffer.from(DEMO_CHECKPOINT_BROTLI_BASE64, "base64"));
  // A damaged bundle must not hand the demo a different file than the one torch wrote.
  if (createHash("sha256").update(bytes).digest("hex") !== DEMO_CHECKPOINT_SHA256) throw new Error("the demo checkpoint in this build is damaged (SHA-256 mismatch); reinstall stmerge");
  await writeFileAtomic(path, bytes);
  return { name, path, bytes: bytes.byteLength };
}
