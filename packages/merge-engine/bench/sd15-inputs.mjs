// The full-size SD1.5 LDM F16 checkpoints the merge benchmarks share (three for merge-sd15.mjs and
// merge-methods.mjs, ten for merge-many-sd15.mjs): seeded synthetic weights from tools/bench/synthetic-checkpoint.mjs,
// generated once into <repo>/.bench (git-ignored), so a fresh clone needs nothing else.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeSyntheticCheckpoint } from "../../../tools/bench/synthetic-checkpoint.mjs";

/**
 * The paths of sd15-1..`count`.safetensors in `benchDir` (seeds 1…count), writing any that are
 * missing; with `dtype` "F32", sd15f32-1…`count` (the same seeds in F32, 4.27 GB each: an F32
 * checkpoint as many SD1.5 models are published).
 */
export function sd15BenchInputs(benchDir, count = 3, dtype = "F16") {
  mkdirSync(benchDir, { recursive: true });
  const prefix = dtype === "F16" ? "sd15" : `sd15${dtype.toLowerCase()}`;
  const inputs = Array.from({ length: count }, (_, i) => join(benchDir, `${prefix}-${i + 1}.safetensors`));
  for (const [i, path] of inputs.entries()) {
    if (existsSync(path)) continue;
    console.log(`generating ${path} (once)...`);
    writeSyntheticCheckpoint({ layout: "sd1-ldm", out: path, dtype, seed: i + 1 });
  }
  return inputs;
}
