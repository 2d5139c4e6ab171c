// Benchmark: `stmerge convert --no-prune` of a 4.3 GB F32 SD1.5-layout zip checkpoint vs its I/O floor
// (tools/bench/io-floor.mjs: read the input once, write and fsync as many bytes; and with the
// output past the page cache, `--direct`, as stmerge writes large outputs on Linux) and vs PyTorch
// `torch.load(weights_only=True)` + safetensors `save_file`, wall time and peak RSS from
// /usr/bin/time; floor, stmerge and torch are taken in turn each round and the median of the
// per-round ratios is reported. With the default metadata cache (or STMERGE_CACHE) the first round
// hashes the input and later rounds take its SHA-256 from the cache. The input is generated once
// into <repo>/.bench (git-ignored) by tools/bench/make_torch_checkpoint.py from the committed
// sd1-ldm layout. Needs the venv at
// <repo>/.venv-oracle and a build:
//   pnpm build && pnpm --filter @stmerge/safe-pickle bench      (STMERGE_BENCH_ROUNDS=N, default 3)
// STMERGE_BENCH_SCALE=4 shrinks every large dimension (a quick run with the same keys).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const benchDir = join(repo, ".bench");
const python = join(repo, ".venv-oracle/bin/python");
// STMERGE_BIN=<bundled stmerge.js> runs another build (e.g. a bundle under apps/stmerge/.tmp).
const cli = resolve(process.env.STMERGE_BIN ?? join(repo, "apps/stmerge/dist/stmerge.js"));
const scale = Number(process.env.STMERGE_BENCH_SCALE ?? "1");
const rounds = Number(process.env.STMERGE_BENCH_ROUNDS ?? "3");
mkdirSync(benchDir, { recursive: true });

if (!existsSync(python)) {
  console.log(`skipped: no Python venv at ${python} (needs torch and safetensors for the input and the baseline)`);
  process.exit(0);
}
if (!existsSync(cli)) {
  console.log(`skipped: ${cli} is missing; run \`pnpm build\` first`);
  process.exit(0);
}
const input = join(benchDir, scale === 1 ? "sd15-f32.ckpt" : `sd15-f32-scale${scale}.ckpt`);
if (!existsSync(input)) {
  console.log(`generating ${input} (once)...`);
  execFileSync(python, [join(repo, "tools/bench/make_torch_checkpoint.py"), "sd1-ldm", input, "--dtype", "F32", "--components", "diffuser,clip_l,vae", "--seed", "1", "--scale", String(scale)], { stdio: "inherit" });
}

const ours = join(benchDir, "convert-stmerge.safetensors");
const theirs = join(benchDir, "convert-torch.safetensors");
const baseline = [
  "-c",
  "import sys, torch\nfrom safetensors.torch import save_file\nck = torch.load(sys.argv[1], weights_only=True, map_location='cpu')\nsd = ck.get('state_dict', ck)\nsave_file({k: v.contiguous() for k, v in sd.items() if isinstance(v, torch.Tensor)}, sys.argv[2])",
  input,
  theirs,
];
// Warm the page cache so both sides read from memory, as they would on a second run.
spawnSync("sh", ["-c", 'cat "$1" > /dev/null', "sh", input]);
const rows = [];
const loads = [];
for (let i = 0; i < rounds; i++) {
  rmSync(ours, { force: true });
  rmSync(theirs, { force: true });
  loads.push(loadavg()[0]);
  rows.push({ tool: "I/O floor", round: i, ...measuredRun(process.execPath, [join(repo, "tools/bench/io-floor.mjs"), join(benchDir, "convert_floor.tmp"), input]) });
  rows.push({ tool: "I/O floor, direct", round: i, ...measuredRun(process.execPath, [join(repo, "tools/bench/io-floor.mjs"), "--direct", join(benchDir, "convert_floor.tmp"), input]) });
  rows.push({ tool: "stmerge convert", round: i, ...measuredRun(process.execPath, [cli, "convert", input, "-o", ours, "--no-prune", "--quiet"]) });
  rows.push({ tool: "torch.load(weights_only) + save_file", round: i, ...measuredRun(python, baseline) });
  console.log(rows.slice(-4).map((r) => `${r.tool} ${r.wall.toFixed(1)} s`).join(", "), `(load ${loads.at(-1).toFixed(1)})`);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const of = (tool) => rows.filter((r) => r.tool === tool);
const ratio = (a, b) => median(of(a).map((r, i) => r.wall / of(b)[i].wall));
const gb = (statSync(input).size / 1e9).toFixed(2);
console.log(`\nconvert ${gb} GB F32 SD1.5-layout zip checkpoint (${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB RAM), ${new Date().toISOString()}, load ${loads.map((l) => l.toFixed(1)).join(", ")}, median of ${rounds}`);
console.log(`| tool | wall s (median) | runs | peak RSS MB |\n|---|---|---|---|`);
for (const tool of ["I/O floor", "I/O floor, direct", "stmerge convert", "torch.load(weights_only) + save_file"]) {
  console.log(`| ${tool} | ${median(of(tool).map((r) => r.wall)).toFixed(2)} | ${of(tool).map((r) => r.wall.toFixed(1)).join(", ")} | ${median(of(tool).map((r) => Math.round(r.rssMB)))} |`);
}
console.log(`stmerge / I/O floor: median ratio ${ratio("stmerge convert", "I/O floor").toFixed(2)} (target <= 1.3); / the floor writing past the page cache: ${ratio("stmerge convert", "I/O floor, direct").toFixed(2)}`);
console.log(`stmerge / torch: median ratio ${ratio("stmerge convert", "torch.load(weights_only) + save_file").toFixed(2)} (target <= 0.5), stmerge peak RSS ${median(of("stmerge convert").map((r) => Math.round(r.rssMB)))} MB`);
const verify = spawnSync(process.execPath, [cli, "verify", input, ours, "--json"], { encoding: "utf8" });
const verified = verify.status === 0 ? JSON.parse(verify.stdout) : undefined;
console.log(`stmerge verify of its own output: exit ${verify.status}${verified ? `, ${JSON.stringify(verified.counts)}` : `\n${verify.stderr}`}`);
for (const p of [ours, theirs]) rmSync(p, { force: true });
