// Child process of merge-memory-bound.test.ts: merges the manifest given as argv[2] under the
// memory budget argv[3] and prints the plan's working-memory bound beside the process's RSS.
import { readFileSync } from "node:fs";
import { createCpuKernelBackend } from "@stmerge/core-tensors";
import { parseManifest, runMerge } from "@stmerge/merge-engine";

const [manifestPath, budget] = process.argv.slice(2) as [string, string];
const kernels = createCpuKernelBackend({ workers: 1 });
const manifest = parseManifest(readFileSync(manifestPath, "utf8"), manifestPath);
// Everything is loaded (modules, worker); what the merge adds on top of this is its working memory.
const baselineRssBytes = process.memoryUsage().rss;
const result = await runMerge(manifest, { kernels, memoryBudgetBytes: Number(budget) });
await kernels.close();
process.stdout.write(
  JSON.stringify({
    baselineRssBytes,
    peakRssBytes: process.resourceUsage().maxRSS * 1024,
    estimatedPeakBytes: result.plan.estimatedPeakBytes,
    bytesWritten: result.bytesWritten,
  }),
);
