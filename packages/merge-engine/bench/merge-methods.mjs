// Benchmark: every streaming merge method against weighted sum on the same three SD1.5-size F16
// checkpoints (slerp on the first two), each in its own process for wall time and peak RSS,
// taken in turn. Uses the inputs of merge-sd15.mjs (sd15-inputs.mjs: <repo>/.bench, generated once).
// CPU time (user + system, all threads) is reported beside wall time: on a shared machine it is
// the steadier figure. Run after a build:  node bench/merge-methods.mjs [rounds] [method,method…]
// STMERGE_BENCH_DTYPE=F32: the same seeds as F32 checkpoints (sd15f32-*), merged into F16
// (output_precision fp16, as such merges are usually saved).
import { rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";
import { sd15BenchInputs } from "./sd15-inputs.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = join(resolve(here, "../../.."), ".bench");
const dtype = process.env.STMERGE_BENCH_DTYPE ?? "F16";
const inputs = sd15BenchInputs(benchDir, 3, dtype);
const rounds = Number(process.argv[2] ?? 1);
const only = process.argv[3]?.split(",");
// STMERGE_BENCH_MERGE_CHILD: another build of merge-child.mjs (as in merge-sd15.mjs).
const mergeChild = process.env.STMERGE_BENCH_MERGE_CHILD ?? join(here, "merge-child.mjs");

const runs = {
  weighted_sum: { models: inputs, weights: [0.5, 0.3, 0.2], merge_method: "weighted_sum" },
  ties: { models: inputs, weights: [0, 0.6, 0.4], merge_method: "ties", merge_params: { density: 0.3 } },
  dare: { models: inputs, weights: [0, 0.6, 0.4], merge_method: "dare", merge_params: { drop_rate: 0.5 } },
  consensus: { models: inputs, weights: [1, 1, 1], merge_method: "consensus" },
  add_difference: { models: inputs, weights: [1, 1, 1], merge_method: "add_difference", merge_params: { alpha: 0.7 } },
  train_difference: { models: inputs, weights: [1, 1, 1], merge_method: "train_difference", merge_params: { alpha: 0.7 } },
  weighted_sum_2: { models: inputs.slice(0, 2), weights: [0.5, 0.5], merge_method: "weighted_sum" },
  slerp: { models: inputs.slice(0, 2), weights: [1, 1], merge_method: "slerp", merge_params: { t: 0.4 } },
};

/** A merge-child run: its measures and the figures it prints last (JSON). */
function measured(args) {
  const r = measuredRun("node", args);
  return { ...r, ...JSON.parse(r.stdout.split("\n").at(-1)) };
}

const results = Object.fromEntries(Object.keys(runs).map((k) => [k, []]));
const out = join(benchDir, "methods_out.safetensors");
for (let round = 0; round < rounds; round++) {
  for (const [name, run] of Object.entries(runs)) {
    if (only && !only.includes(name)) continue;
    const manifest = join(benchDir, `bench_${name}.json`);
    writeFileSync(manifest, JSON.stringify({ models: run.models.map((path, index) => ({ path, weight: run.weights[index], index })), merge_method: run.merge_method, ...(run.merge_params ? { merge_params: run.merge_params } : {}), output: { path: "methods_out.safetensors" }, ...(dtype === "F16" ? {} : { output_precision: "fp16" }), prune: false }));
    const load = loadavg()[0];
    const r = measured([mergeChild, manifest, out]);
    results[name].push({ ...r, load });
    console.log(`${name.padEnd(16)} ${r.wall.toFixed(1).padStart(6)} s wall ${r.cpu.toFixed(1).padStart(6)} s CPU ${r.rssMB.toFixed(0).padStart(6)} MB  load ${load.toFixed(1)}  ${JSON.stringify(r.timings)}`);
    rmSync(out, { force: true });
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${new Date().toISOString()}; inputs ${dtype}`);
for (const name of Object.keys(runs).filter((n) => results[n].length)) {
  const ref = name === "slerp" || name === "weighted_sum_2" ? "weighted_sum_2" : "weighted_sum";
  if (!results[ref].length) continue;
  const ratio = (f) => median(results[name].map((r, i) => f(r) / f(results[ref][i])));
  console.log(`${name.padEnd(16)} median ${median(results[name].map((r) => r.wall)).toFixed(1)} s wall, ${median(results[name].map((r) => r.cpu)).toFixed(1)} s CPU, ${median(results[name].map((r) => r.rssMB)).toFixed(0)} MB; ${ratio((r) => r.wall).toFixed(2)}x wall, ${ratio((r) => r.cpu).toFixed(2)}x CPU of ${ref}`);
}
writeFileSync(join(benchDir, "merge-methods-results.json"), JSON.stringify(results, null, 2));
