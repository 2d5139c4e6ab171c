import { join } from "node:path";
import { createSafetensorsWriter, DTYPE_SIZE, shapeElementCount, type TensorDescriptor } from "@stmerge/core-tensors";
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
export function demoTensorBytes(spec: DemoTensorSpec, modelName: string, variation: number): Uint8Array {
  const count = shapeElementCount(spec.shape);
  if (spec.dtype === "I64") {
    const ints = new BigInt64Array(count);
    for (let i = 0; i < count; i++) ints[i] = BigInt(i % (spec.shape[spec.shape.length - 1] ?? 1));
    return new Uint8Array(ints.buffer);
  }
  const values = demoTensorValues(spec.name, count, hashString(modelName), variation);
  return new Uint8Array(values.buffer);
}

/**
 * Writes three small SD1.5-layout models (real key names, shrunk shapes, F32) that differ like
 * fine-tunes of one base model, so merging them is meaningful.
 */
export async function writeDemoSafetensorsModels(dir: string, names: readonly string[] = ["demo-base", "demo-anime", "demo-photo"]): Promise<DemoModel[]> {
  const specs = sd1DemoLayout().filter(isInferenceTensor);
  const models: DemoModel[] = [];
  for (const [index, name] of names.entries()) {
    const path = join(dir, `${name}.safetensors`);
    const sink = createSafetensorsWriter(path);
    const descriptors: TensorDescriptor[] = specs.map((s) => {
      const dtype = s.dtype === "I64" ? "I64" : "F32";
      return { name: s.name, dtype, shape: s.shape, byteLength: shapeElementCount(s.shape) * DTYPE_SIZE[dtype] };
    });
    await sink.begin(descriptors, { "modelspec.title": name, "modelspec.architecture": "stable-diffusion-v1", "stmerge.demo": "true" });
    try {
      for (const spec of specs) await sink.write(spec.name, demoTensorBytes(spec, name, index === 0 ? 0 : 1));
    } catch (error) {
      await sink.abort();
      throw error;
    }
    await sink.commit();
    models.push({ name, path, bytes: sink.layout?.totalSize ?? 0 });
  }
  return models;
}
