// The full-size SD1.5 LDM F16 checkpoints the merge benchmarks share (three for merge-sd15.mjs and
// merge-methods.mjs, ten for merge-many-sd15.mjs): seeded synthetic weights from tools/bench/synthetic-checkpoint.mjs,
// generated once into <repo>/.bench (git-ignored), so a fresh clone needs nothing else.
import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeSyntheticCheckpoint } from "../../../tools/bench/synthetic-checkpoint.mjs";

/** The paths of sd15-1..`count`.safetensors in `benchDir` (seeds 1…count), writing any that are missing. */
export function sd15BenchInputs(benchDir, count = 3) {
  mkdirSync(benchDir, { recursive: true });
  const inputs = Array.from({ length: count }, (_, i) => join(benchDir, `sd15-${i + 1}.safetensors`));
  for (const [i, path] of inputs.entries()) {
    if (existsSync(path)) continue;
    console.log(`generating ${path} (once)...`);
    writeSyntheticCheckpoint({ layout: "sd1-ldm", out: path, dtype: "F16", seed: i + 1 });
  }
  return inputs;
}
