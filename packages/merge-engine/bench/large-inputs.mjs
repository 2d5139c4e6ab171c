// The two benchmarks whose inputs take tens of GB (merge-many-sd15.mjs: ten SD1.5 checkpoints,
// 21 GB; merge-sdxl.mjs: three SDXL ones, 20.8 GB), run by `pnpm bench` when
// STMERGE_BENCH_LARGE=1; otherwise it says how to run them, so no workload of the speed issue is
// left out silently.
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const scripts = ["merge-many-sd15.mjs", "merge-sdxl.mjs"];
if (process.env.STMERGE_BENCH_LARGE !== "1") {
  console.log(`not run: ${scripts.join(", ")} (their inputs take about 42 GB of disk in <repo>/.bench); STMERGE_BENCH_LARGE=1 pnpm bench runs them`);
} else {
  for (const script of scripts) execFileSync(process.execPath, [join(here, script)], { stdio: "inherit" });
}
