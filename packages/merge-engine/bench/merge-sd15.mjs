// Benchmark: weighted-sum merge of three SD1.5-size F16 checkpoints (0.5/0.3/0.2), stmerge vs
// the PyTorch baseline (tools/bench/torch_merge.py), beside the I/O floor (io-floor.mjs; and with
// its output past the page cache, `--direct`, as stmerge writes large outputs on Linux), plus
// the max F16 ulp difference of the two outputs and where the merge's main loop waited (read,
// compute, write), and the bundled CLI as a user runs it (its output hashed for the metadata
// cache; once with the inputs' SHA-256 still to learn). Floor, stmerge, the CLI and torch are
// taken in turn for each round and the median of the per-round ratios is reported. Inputs are generated once into <repo>/.bench (git-ignored)
// by tools/bench/synthetic-checkpoint.mjs from the committed sd1-ldm layout.
// Needs the venv at <repo>/.venv-oracle for the baseline (skipped without it). Run after a build:
//   pnpm --filter @stmerge/merge-engine bench        (STMERGE_BENCH_ROUNDS=N, default 3)
import { spawnSync } from "node:child_process";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";
import { maxUlpDifference } from "./compare-outputs.mjs";
import { sd15BenchInputs } from "./sd15-inputs.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const benchDir = join(repo, ".bench");
const python = join(repo, ".venv-oracle/bin/python");
const weights = [0.5, 0.3, 0.2];
const rounds = Number(process.env.STMERGE_BENCH_ROUNDS ?? "3");
// STMERGE_BENCH_MERGE_CHILD: another build of merge-child.mjs (e.g. an esbuild bundle, immune to
// dist/ being rebuilt while a long run is under way).
const mergeChild = process.env.STMERGE_BENCH_MERGE_CHILD ?? join(here, "merge-child.mjs");
const inputs = sd15BenchInputs(benchDir);

// Warm the page cache the same way for every contender.
spawnSync("sh", ["-c", 'cat "$@" > /dev/null', "sh", ...inputs], { stdio: "inherit" });

const manifestPath = join(benchDir, "bench_manifest.json");
writeFileSync(manifestPath, JSON.stringify({ models: inputs.map((p, i) => ({ path: p, weight: weights[i], architecture: "SD1.5", index: i })), output: { path: "stmerge_out.safetensors" }, prune: false }, null, 2));
const ours = join(benchDir, "stmerge_out.safetensors");
// The same inputs listed twice (six models, weights halved): peak memory must not grow with N.
const manifest6 = join(benchDir, "bench_manifest_6.json");
writeFileSync(manifest6, JSON.stringify({ models: [...inputs, ...inputs].map((p, i) => ({ path: p, weight: weights[i % 3] / 2, index: i })), prune: false }, null, 2));
const torchOut = join(benchDir, "torch_out.safetensors");

// What a user runs: the bundled CLI, which also hashes the output for the metadata cache (all six
// hashes, on worker lanes beside the merge) and, the first time, each input's SHA-256 from its
// reads (the recipe names its parents by SHA-256). Its own cache folder: the first run (timed
// once, below) learns the inputs' hashes; the rounds then find them there.
// STMERGE_BIN=<bundled stmerge.js> runs another build.
const cli = resolve(process.env.STMERGE_BIN ?? join(repo, "apps/stmerge/dist/stmerge.js"));
const cliCache = join(benchDir, "merge-cli-cache.json");
const cliOut = join(benchDir, "stmerge_cli_out.safetensors");
const runCli = () => measuredRun("node", [cli, "merge", manifestPath, "-o", cliOut, "--overwrite", "--quiet"], { STMERGE_CACHE: cliCache });
const withCli = existsSync(cli);
if (!withCli) console.log(`no CLI rows: ${cli} is missing (run \`pnpm build\` first)`);

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { ioFloor: [], ioFloorDirect: [], stmerge: [], cli: [], torch: [] };
const loads = [];
let cliFirst;
if (withCli) {
  rmSync(cliCache, { force: true });
  cliFirst = runCli();
}
for (let round = 0; round < rounds; round++) {
  loads.push(loadavg()[0]);
  rows.ioFloor.push(measuredRun("node", [join(here, "io-floor.mjs"), join(benchDir, "io_floor.tmp"), ...inputs]));
  rows.ioFloorDirect.push(measuredRun("node", [join(here, "io-floor.mjs"), "--direct", join(benchDir, "io_floor.tmp"), ...inputs]));
  rows.stmerge.push(measuredRun("node", [mergeChild, manifestPath, ours]));
  if (withCli) rows.cli.push(runCli());
  if (existsSync(python)) rows.torch.push(measuredRun(python, [join(repo, "tools/bench/torch_merge.py"), torchOut, ...inputs.map((p, i) => `${p}:${weights[i]}`)]));
  const last = (k) => rows[k].at(-1);
  console.log(`round ${round + 1}: load ${loads.at(-1).toFixed(1)}, floor ${last("ioFloor").wall.toFixed(1)} s (direct ${last("ioFloorDirect").wall.toFixed(1)} s), stmerge ${last("stmerge").wall.toFixed(1)} s ${last("stmerge").stdout.trim()}${withCli ? `, CLI ${last("cli").wall.toFixed(1)} s` : ""}${rows.torch.length ? `, torch ${last("torch").wall.toFixed(1)} s` : ""}`);
}
const results = { rounds: rows, loads, cliFirst };
results.stmerge6 = measuredRun("node", [mergeChild, manifest6, join(benchDir, "stmerge_out6.safetensors")]);
if (rows.torch.length) results.diff = await maxUlpDifference(ours, torchOut);

const line = (name, rs) => `${name.padEnd(22)} ${median(rs.map((r) => r.wall)).toFixed(2).padStart(7)} s  ${median(rs.map((r) => r.cpu)).toFixed(1).padStart(5)} CPU-s  ${median(rs.map((r) => r.rssMB)).toFixed(0).padStart(6)} MB peak RSS  (runs: ${rs.map((r) => r.wall.toFixed(1)).join(", ")})`;
const ratio = (a, b) => median(rows[a].map((r, i) => r.wall / rows[b][i].wall));
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; warm page cache; ${new Date().toISOString()}; load ${loads.map((l) => l.toFixed(1)).join(", ")}`);
console.log(line("I/O floor", rows.ioFloor));
console.log(line("I/O floor, direct", rows.ioFloorDirect));
console.log(line("stmerge", rows.stmerge));
console.log(line("stmerge, 6 inputs", [results.stmerge6]), results.stmerge6.stdout.trim());
console.log(`stmerge / I/O floor: median ratio ${ratio("stmerge", "ioFloor").toFixed(2)} (target <= 1.25); / the floor writing past the page cache: ${ratio("stmerge", "ioFloorDirect").toFixed(2)}`);
if (withCli) {
  console.log(line("CLI, inputs known", rows.cli));
  console.log(line("CLI, first merge", [cliFirst]));
  console.log(`CLI (output hashed for the cache) / I/O floor: median ratio ${ratio("cli", "ioFloor").toFixed(2)}; the first merge of new inputs (their SHA-256 learned too): ${(cliFirst.wall / median(rows.ioFloor.map((r) => r.wall))).toFixed(2)}x the median floor`);
}
const waits = rows.stmerge.map((r) => JSON.parse(r.stdout.trim().split("\n").at(-1)).timings);
// Overlap: the main loop's waits and compute add up to the merge's wall time; reads and writes
// run beside compute, so with full overlap the wall time is the largest of read, compute, write.
const med = (k) => median(waits.map((t) => t[k])).toFixed(1);
console.log(`merge (median s): main loop waited for reads ${med("waitRead")}, computed ${med("compute")}, waited for writes ${med("waitWrite")}; reads busy ${med("readBusy")}, writes busy ${med("writeBusy")}, merge ${median(rows.stmerge.map((r) => JSON.parse(r.stdout.trim().split("\n").at(-1)).seconds)).toFixed(1)}`);
if (rows.torch.length) {
  console.log(line("torch_merge.py", rows.torch));
  console.log(`stmerge / torch time: median ratio ${ratio("stmerge", "torch").toFixed(2)} (target <= 0.5)`);
  console.log(`max F16 ulp difference vs torch: ${results.diff.maxUlp} over ${results.diff.tensors} tensors${results.diff.worst ? ` (worst: ${results.diff.worst})` : ""}`);
}
writeFileSync(join(benchDir, "merge-sd15-results.json"), JSON.stringify(results, null, 2));
// Outputs are 2 GB each; the inputs stay for the next run.
for (const p of [ours, torchOut, cliOut, join(benchDir, "stmerge_out6.safetensors")]) rmSync(p, { force: true });
rmSync(cliCache, { force: true });
