// Benchmark: weighted-sum merge of three SD1.5-size F16 checkpoints (0.5/0.3/0.2), stmerge vs
// the PyTorch baseline (../shared/bench/torch_merge.py), plus the I/O floor and the max F16 ulp
// difference of the two outputs. Inputs are generated once into <repo>/.bench (git-ignored).
// Needs the venv at <repo>/.venv-oracle for the baseline (skipped without it). Run after a build:
//   pnpm --filter @stmerge/merge-engine bench
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { maxUlpDifference } from "./compare-outputs.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const shared = resolve(repo, "../shared");
const benchDir = join(repo, ".bench");
const python = join(repo, ".venv-oracle/bin/python");
const weights = [0.5, 0.3, 0.2];
mkdirSync(benchDir, { recursive: true });

const inputs = [1, 2, 3].map((i) => join(benchDir, `sd15-${i}.safetensors`));
for (const [i, path] of inputs.entries()) {
  if (existsSync(path)) continue;
  console.log(`generating ${path} (once)...`);
  execFileSync(existsSync(python) ? python : "python3", [join(shared, "bench/make_synthetic.py"), join(shared, "model-layouts/sd1-ldm.json"), path, "--dtype", "F16", "--seed", String(i + 1)], { stdio: "inherit" });
}

/** Runs a command under /usr/bin/time and returns wall seconds, peak RSS (MB) and stdout. */
function measured(cmd, args) {
  const r = spawnSync("/usr/bin/time", ["-f", "TIME %e %M", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${cmd} failed: ${r.stderr}`);
  const m = /TIME ([\d.]+) (\d+)/.exec(r.stderr);
  return { wall: Number(m[1]), rssMB: Number(m[2]) / 1024, stdout: r.stdout };
}

// Warm the page cache the same way for every contender.
for (const p of inputs) execFileSync("cat", [p], { stdio: ["ignore", "ignore", "inherit"], maxBuffer: 1 });

const manifestPath = join(benchDir, "bench_manifest.json");
writeFileSync(manifestPath, JSON.stringify({ models: inputs.map((p, i) => ({ path: p, weight: weights[i], architecture: "SD1.5", index: i })), output: { path: "stmerge_out.safetensors" }, prune: false }, null, 2));
const ours = join(benchDir, "stmerge_out.safetensors");
// The same inputs listed twice (six models, weights halved): peak memory must not grow with N.
const manifest6 = join(benchDir, "bench_manifest_6.json");
writeFileSync(manifest6, JSON.stringify({ models: [...inputs, ...inputs].map((p, i) => ({ path: p, weight: weights[i % 3] / 2, index: i })), prune: false }, null, 2));
const torchOut = join(benchDir, "torch_out.safetensors");

const results = {};
results.ioFloor = measured("node", [join(here, "io-floor.mjs"), join(benchDir, "io_floor.tmp"), ...inputs]);
results.stmerge = measured("node", [join(here, "merge-child.mjs"), manifestPath, ours]);
results.stmerge6 = measured("node", [join(here, "merge-child.mjs"), manifest6, join(benchDir, "stmerge_out6.safetensors")]);
if (existsSync(python)) {
  results.torch = measured(python, [join(shared, "bench/torch_merge.py"), torchOut, ...inputs.map((p, i) => `${p}:${weights[i]}`)]);
  results.diff = await maxUlpDifference(ours, torchOut);
}

const line = (name, r) => `${name.padEnd(22)} ${r.wall.toFixed(2).padStart(7)} s  ${r.rssMB.toFixed(0).padStart(6)} MB peak RSS`;
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; warm page cache`);
console.log(line("I/O floor", results.ioFloor));
console.log(line("stmerge", results.stmerge), results.stmerge.stdout.trim());
console.log(line("stmerge, 6 inputs", results.stmerge6), results.stmerge6.stdout.trim());
if (results.torch) {
  console.log(line("torch_merge.py", results.torch));
  console.log(`stmerge / torch time: ${(results.stmerge.wall / results.torch.wall).toFixed(3)} (target <= 0.15)`);
  console.log(`max F16 ulp difference vs torch: ${results.diff.maxUlp} over ${results.diff.tensors} tensors${results.diff.worst ? ` (worst: ${results.diff.worst})` : ""}`);
}
writeFileSync(join(benchDir, "merge-sd15-results.json"), JSON.stringify(results, null, 2));
// Outputs are 2 GB each; the inputs stay for the next run.
for (const p of [ours, torchOut, join(benchDir, "stmerge_out6.safetensors")]) rmSync(p, { force: true });
