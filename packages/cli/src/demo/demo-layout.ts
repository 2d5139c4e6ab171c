import { gunzipSync } from "node:zlib";
import type { DType } from "@stmerge/core-tensors";
import { SD1_DEMO_LAYOUT_GZ_BASE64 } from "./sd1-demo-layout.js";

export interface DemoTensorSpec {
  readonly component: string;
  readonly name: string;
  /** Shape of the real SD1.5 tensor. */
  readonly realShape: readonly number[];
  /** Shape used by the demo: real dims shrunk so a whole model is a few MB. */
  readonly shape: readonly number[];
  readonly dtype: DType;
}

const TORCH_TO_DTYPE: Record<string, DType> = { float32: "F32", float16: "F16", bfloat16: "BF16", int64: "I64", int32: "I32" };

/** Largest dimension a demo tensor keeps; small tensors keep their real shape. */
const DEMO_MAX_DIM = 8;
const KEEP_REAL_BELOW_ELEMENTS = 4096;

let cached: DemoTensorSpec[] | undefined;

/** The real SD1.5 key layout (LDM naming, with EMA and scheduler buffers), shapes shrunk for the demo. */
export function sd1DemoLayout(): readonly DemoTensorSpec[] {
  if (cached) return cached;
  const raw = JSON.parse(gunzipSync(Buffer.from(SD1_DEMO_LAYOUT_GZ_BASE64, "base64")).toString("utf8")) as [string, string, number[], string][];
  cached = raw.map(([component, name, realShape, torchDtype]) => {
    const count = realShape.reduce((a, b) => a * b, 1);
    // Cross-attention keeps its real context width (768 for SD1.x), which architecture
    // detection reads to tell SD1 from SD2; every other large dim is shrunk.
    const keepSecond = /attn2\.to_[kv]\.weight$/.test(name);
    const shape = count <= KEEP_REAL_BELOW_ELEMENTS ? realShape : realShape.map((d, i) => (keepSecond && i === 1 ? d : Math.min(d, DEMO_MAX_DIM)));
    return { component, name, realShape, shape, dtype: TORCH_TO_DTYPE[torchDtype] ?? "F32" };
  });
  return cached;
}
