import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { fileURLToPath } from "node:url";
import type { DType, TensorDescriptor } from "@stmerge/core-tensors";
import { DTYPE_SIZE, shapeElementCount } from "@stmerge/core-tensors";

/** Real checkpoints' key layouts committed in fixtures/layouts (written by tools/fixtures/model_layouts.py). */
export type LayoutName = "sd1-ldm" | "sd1-kohya" | "sdxl-sgm" | "sdxl-kohya" | "sd3-comfyui" | "flux-flux";

interface CompactLayout {
  identifier: string;
  components: Record<string, [string, number[], DType][]>;
}

export function loadLayout(name: LayoutName): CompactLayout {
  const file = fileURLToPath(new URL(`./fixtures/layouts/${name}.json.gz`, import.meta.url));
  return JSON.parse(gunzipSync(readFileSync(file)).toString("utf8")) as CompactLayout;
}

/** Descriptors of a layout's components (all but ema/scheduler unless listed). */
export function layoutDescriptors(name: LayoutName, components?: readonly string[]): TensorDescriptor[] {
  const layout = loadLayout(name);
  const pick = components ?? Object.keys(layout.components).filter((c) => c !== "ema" && c !== "scheduler");
  return pick.flatMap((c) =>
    (layout.components[c] ?? []).map(([key, shape, dtype]) => ({ name: key, dtype, shape, byteLength: shapeElementCount(shape) * DTYPE_SIZE[dtype] })),
  );
}
