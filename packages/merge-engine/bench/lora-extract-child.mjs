// One LoRA extract in its own process, so the parent can measure its wall time and peak RSS.
// usage: node lora-extract-child.mjs TUNED BASE OUTPUT RANK WORKERS
import { createCpuKernelBackend } from "@stmerge/core-tensors";
import { extractLora } from "../dist/index.js";

const [tuned, base, output, rank, workers] = process.argv.slice(2);
const started = performance.now();
const kernels = createCpuKernelBackend({ workers: Number(workers) });
const r = await extractLora(tuned, base, { outputPath: output, rank: Number(rank), overwrite: true, kernels });
await kernels.close();
const errors = r.modules.map((m) => m.relativeError);
process.stdout.write(
  JSON.stringify({ seconds: (performance.now() - started) / 1000, kernels: kernels.description, modules: r.modules.length, unchanged: r.unchanged, convSkipped: r.convSkipped, meanRelativeError: errors.reduce((s, e) => s + e, 0) / errors.length }) + "\n",
);
