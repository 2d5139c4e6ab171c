// Benchmark: weighted-sum merge of ten different SD1.5-size F16 checkpoints (weights 0.1 each)
// beside the I/O floor of the same files (io-floor.mjs: read all ten, write one output, fsync; and
// with the output past the page cache, `--direct`), taken in turn each round; reports the median per-round ratio and peak RSS. The inputs
// (sd15-1…10 in <repo>/.bench, 21 GB) are generated once; with the output they may exceed the
// page cache, so both contenders read part of them from disk. `pnpm bench` runs it with
// STMERGE_BENCH_LARGE=1 (large-inputs.mjs). Run after a build:
//   node bench/merge-many-sd15.mjs [count=10]        (STMERGE_BENCH_ROUNDS=N, default 2)
import { rmSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";
import { sd15BenchInputs } from "./sd15-inputs.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = join(resolve(here, "../../.."), ".bench");
const count = Number(process.argv[2] ?? 10);
const rounds = Number(process.env.STMERGE_BENCH_ROUNDS ?? "2");
const inputs = sd15BenchInputs(benchDir, count);

const manifest = join(benchDir, `bench_manifest_${count}.json`);
writeFileSync(manifest, JSON.stringify({ models: inputs.map((path, index) => ({ path, weight: 1 / count, index })), prune: false }, null, 2));
const output = join(benchDir, `stmerge_out_${count}.safetensors`);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = { floor: [], floorDirect: [], stmerge: [] };
for (let round = 0; round < rounds; round++) {
  const load = loadavg()[0];
  rows.floor.push(measuredRun("node", [join(here, "io-floor.mjs"), join(benchDir, "io_floor.tmp"), ...inputs]));
  rows.floorDirect.push(measuredRun("node", [join(here, "io-floor.mjs"), "--direct", join(benchDir, "io_floor.tmp"), ...inputs]));
  rows.stmerge.push(measuredRun("node", [join(here, "merge-child.mjs"), manifest, output]));
  rmSync(output, { force: true });
  const [f, d, s] = [rows.floor.at(-1), rows.floorDirect.at(-1), rows.stmerge.at(-1)];
  console.log(`round ${round + 1}: load ${load.toFixed(1)}, floor ${f.wall.toFixed(1)} s (direct ${d.wall.toFixed(1)} s), stmerge ${s.wall.toFixed(1)} s (${s.cpu.toFixed(1)} CPU-s, ${s.rssMB.toFixed(0)} MB) ${s.stdout}`);
}
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; ${count} inputs; ${new Date().toISOString()}`);
console.log(`I/O floor ${median(rows.floor.map((r) => r.wall)).toFixed(1)} s (direct ${median(rows.floorDirect.map((r) => r.wall)).toFixed(1)} s); stmerge ${median(rows.stmerge.map((r) => r.wall)).toFixed(1)} s, peak RSS ${Math.max(...rows.stmerge.map((r) => r.rssMB)).toFixed(0)} MB`);
console.log(`stmerge / I/O floor: median ratio ${median(rows.stmerge.map((r, i) => r.wall / rows.floor[i].wall)).toFixed(2)} (target <= 1.3); / the floor writing past the page cache: ${median(rows.stmerge.map((r, i) => r.wall / rows.floorDirect[i].wall)).toFixed(2)}`);
