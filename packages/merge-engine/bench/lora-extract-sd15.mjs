// Benchmark: extract a rank-64 LoRA from two full-size synthetic SD1.5 F16 checkpoints (the real
// sd1-ldm key layout, written by tools/bench/synthetic-checkpoint.mjs with two seeds, so every ΔW
// is full rank: the SVD's worst case), with the SVDs on 1 and on 2 kernel workers; vs the I/O
// floor (read both checkpoints once). Inputs go to <repo>/.bench
// (git-ignored) and are removed afterwards unless --keep. Run after a build:
//   (cd packages/core-tensors && npx tsup) && (cd packages/merge-engine && npx tsup) && node packages/merge-engine/bench/lora-extract-sd15.mjs
// STMERGE_BENCH_EXTRACT_CHILD=path runs another build of the child (e.g. an esbuild bundle);
// STMERGE_BENCH_EXTRACT_SCALE=S divides every dimension over 64 by S (a quick check of the script).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";
import { writeSyntheticCheckpoint } from "../../../tools/bench/synthetic-checkpoint.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const benchDir = join(repo, ".bench");
mkdirSync(benchDir, { recursive: true });
const scale = Number(process.env.STMERGE_BENCH_EXTRACT_SCALE ?? 1);
const tag = scale === 1 ? "" : `-scale${scale}`;
const base = join(benchDir, `sd15-base${tag}.safetensors`);
const tuned = join(benchDir, `sd15-tuned${tag}.safetensors`);
const output = join(benchDir, `sd15-extracted-r64${tag}.safetensors`);
for (const [path, seed] of [[base, 1], [tuned, 2]]) if (!existsSync(path)) writeSyntheticCheckpoint({ layout: "sd1-ldm", out: path, dtype: "F16", seed, scale });
const child = process.env.STMERGE_BENCH_EXTRACT_CHILD ?? join(here, "lora-extract-child.mjs");

execFileSync("cat", [base, tuned], { stdio: ["ignore", "ignore", "inherit"] }); // warm the page cache
const line = (name, r) => `${name.padEnd(24)} ${r.wall.toFixed(2).padStart(8)} s wall  ${r.cpu.toFixed(1).padStart(8)} s CPU  ${r.rssMB.toFixed(0).padStart(6)} MB peak RSS`;
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load ${loadavg()[0].toFixed(1)}; ${new Date().toISOString().slice(0, 16)}Z; warm page cache; no GPU backend${scale === 1 ? "" : `; dimensions / ${scale}`}`);
// The floor reads both inputs; it writes one file the size of the last (the LoRA is far smaller, so this is generous).
const floor = measuredRun("node", [join(repo, "tools/bench/io-floor.mjs"), join(benchDir, "io_floor.tmp"), base, tuned]);
console.log(line("I/O floor (read both)", floor));
for (const workers of (process.env.STMERGE_BENCH_EXTRACT_WORKERS ?? "1,2").split(",")) {
  const r = measuredRun("node", [child, tuned, base, output, "64", workers]);
  console.log(line(`extract rank 64, ${workers}w`, r), r.stdout);
  console.log(`load average after: ${loadavg()[0].toFixed(1)}`);
}
if (!process.argv.includes("--keep")) for (const f of [base, tuned, output]) rmSync(f, { force: true });
