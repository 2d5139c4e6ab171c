// Benchmark: weighted sum (0.5/0.3/0.2) and TIES (density 0.3, model 0 the base) of three
// SDXL-size F16 checkpoints (the sgm layout, 2519 tensors, 6.94 GB each), beside the I/O floor of
// the same files (io-floor.mjs: read all three, write one output, fsync; and with the output past
// the page cache, `--direct`, as stmerge writes it), all taken in turn each round; reports the
// median per-round ratios and peak RSS. The inputs (sdxl-1…3 in <repo>/.bench, 20.8 GB) are
// generated once by tools/bench/synthetic-checkpoint.mjs; with the output they may exceed the
// page cache, so every contender reads part of them from disk. `pnpm bench` runs it with
// STMERGE_BENCH_LARGE=1 (large-inputs.mjs). Run after a build:
//   node bench/merge-sdxl.mjs        (STMERGE_BENCH_ROUNDS=N, default 2)
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const benchDir = join(repo, ".bench");
const rounds = Number(process.env.STMERGE_BENCH_ROUNDS ?? "2");
// STMERGE_BENCH_MERGE_CHILD: another build of merge-child.mjs (as in merge-sd15.mjs).
const mergeChild = process.env.STMERGE_BENCH_MERGE_CHILD ?? join(here, "merge-child.mjs");

mkdirSync(benchDir, { recursive: true });
const inputs = [1, 2, 3].map((seed) => join(benchDir, `sdxl-${seed}.safetensors`));
for (const [i, path] of inputs.entries()) {
  if (existsSync(path)) continue;
  console.log(`generating ${path} (once)...`);
  execFileSync(process.execPath, [join(repo, "tools/bench/synthetic-checkpoint.mjs"), "sdxl-sgm", path, "--dtype", "F16", "--seed", String(i + 1)], { stdio: "inherit" });
}

const methods = {
  weighted_sum: { weights: [0.5, 0.3, 0.2], merge_method: "weighted_sum" },
  ties: { weights: [0, 0.6, 0.4], merge_method: "ties", merge_params: { density: 0.3 } },
};
const manifests = Object.fromEntries(
  Object.entries(methods).map(([name, m]) => {
    const path = join(benchDir, `bench_sdxl_${name}.json`);
    writeFileSync(path, JSON.stringify({ models: inputs.map((p, index) => ({ path: p, weight: m.weights[index], index })), merge_method: m.merge_method, ...(m.merge_params ? { merge_params: m.merge_params } : {}), prune: false }, null, 2));
    return [name, path];
  }),
);
const output = join(benchDir, "stmerge_out_sdxl.safetensors");
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { floor: [], floorDirect: [], weighted_sum: [], ties: [] };
const loads = [];
for (let round = 0; round < rounds; round++) {
  loads.push(loadavg()[0]);
  rows.floor.push(measuredRun("node", [join(here, "io-floor.mjs"), join(benchDir, "io_floor.tmp"), ...inputs]));
  rows.floorDirect.push(measuredRun("node", [join(here, "io-floor.mjs"), "--direct", join(benchDir, "io_floor.tmp"), ...inputs]));
  for (const name of Object.keys(methods)) {
    rows[name].push(measuredRun("node", [mergeChild, manifests[name], output]));
    rmSync(output, { force: true });
  }
  const [f, d] = [rows.floor.at(-1), rows.floorDirect.at(-1)];
  const merges = Object.keys(methods).map((name) => `${name} ${rows[name].at(-1).wall.toFixed(1)} s (${rows[name].at(-1).cpu.toFixed(1)} CPU-s, ${rows[name].at(-1).rssMB.toFixed(0)} MB)`);
  console.log(`round ${round + 1}: load ${loads.at(-1).toFixed(1)}, floor ${f.wall.toFixed(1)} s (direct ${d.wall.toFixed(1)} s), ${merges.join(", ")}`);
}
const ratio = (a, b) => median(rows[a].map((r, i) => r.wall / rows[b][i].wall));
const summary = (name) => `${median(rows[name].map((r) => r.wall)).toFixed(1)} s, ${median(rows[name].map((r) => r.cpu)).toFixed(1)} CPU-s, peak RSS ${Math.max(...rows[name].map((r) => r.rssMB)).toFixed(0)} MB`;
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; 3 SDXL F16 inputs; ${new Date().toISOString()}; load ${loads.map((l) => l.toFixed(1)).join(", ")}`);
console.log(`I/O floor ${median(rows.floor.map((r) => r.wall)).toFixed(1)} s (direct ${median(rows.floorDirect.map((r) => r.wall)).toFixed(1)} s); weighted sum ${summary("weighted_sum")}; TIES ${summary("ties")}`);
console.log(`weighted sum / I/O floor: median ratio ${ratio("weighted_sum", "floor").toFixed(2)} (target <= 1.3); / the floor writing past the page cache: ${ratio("weighted_sum", "floorDirect").toFixed(2)}`);
console.log(`TIES / weighted sum: median ratio ${ratio("ties", "weighted_sum").toFixed(2)} (target <= 1.5), peak RSS ${(Math.max(...rows.ties.map((r) => r.rssMB)) / Math.max(...rows.weighted_sum.map((r) => r.rssMB))).toFixed(2)}x`);
