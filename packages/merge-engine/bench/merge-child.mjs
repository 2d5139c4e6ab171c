// One merge in its own process, so the parent can measure its wall time and peak RSS.
// usage: node merge-child.mjs MANIFEST OUTPUT [workers]
// STMERGE_BENCH_MEMORY_MIB: the memory budget (stmerge merge --memory; default 512), which sets the chunk size.
import { createKernelBackend } from "@stmerge/core-tensors";
import { loadManifest, runMerge } from "../dist/index.js";

const [manifestPath, output, workers] = process.argv.slice(2);
const kernels = await createKernelBackend({ device: "cpu", ...(workers ? { workers: Number(workers) } : {}) });
const started = performance.now();
try {
  const manifest = await loadManifest(manifestPath);
  const r = await runMerge(manifest, { kernels, overrides: { output, overwrite: true, prune: false }, ...(process.env.STMERGE_BENCH_MEMORY_MIB ? { memoryBudgetBytes: Number(process.env.STMERGE_BENCH_MEMORY_MIB) * 2 ** 20 } : {}) });
  process.stdout.write(JSON.stringify({ seconds: (performance.now() - started) / 1000, bytes: r.bytesWritten, kernels: kernels.description, timings: Object.fromEntries(Object.entries(r.timings).map(([k, v]) => [k, Number((v / 1000).toFixed(2))])) }) + "\n");
} finally {
  await kernels.close();
}
