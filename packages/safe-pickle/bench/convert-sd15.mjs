// Benchmark: `stmerge convert` of a 4.3 GB F32 SD1.5-layout zip checkpoint vs PyTorch
// `torch.load(weights_only=True)` + safetensors `save_file` on the same machine, wall time and
// peak RSS from /usr/bin/time. The input is generated once into <repo>/.bench (git-ignored) with
// ../shared/bench/make_synthetic.py. Needs the venv at <repo>/.venv-oracle and a build:
//   pnpm build && pnpm --filter @stmerge/safe-pickle bench
// STMERGE_BENCH_SCALE=4 shrinks every large dimension (a quick run with the same keys).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const benchDir = join(repo, ".bench");
const python = join(repo, ".venv-oracle/bin/python");
const cli = join(repo, "apps/stmerge/dist/stmerge.js");
const scale = Number(process.env.STMERGE_BENCH_SCALE ?? "1");
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
  execFileSync(python, [join(here, "make_sd15_checkpoint.py"), input, "--scale", String(scale)], { stdio: "inherit" });
}

/** Runs a command under /usr/bin/time and returns wall seconds and peak RSS (MB). */
function measured(cmd, args) {
  const r = spawnSync("/usr/bin/time", ["-f", "TIME %e %M", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 24 });
  const m = /TIME ([\d.]+) (\d+)\s*$/.exec(r.stderr);
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { seconds: Number(m[1]), rssMB: Math.round(Number(m[2]) / 1024) };
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
for (let i = 0; i < 2; i++) {
  rmSync(ours, { force: true });
  rmSync(theirs, { force: true });
  rows.push({ tool: "stmerge convert", ...measured(process.execPath, [cli, "convert", input, "-o", ours, "--quiet"]) });
  rows.push({ tool: "torch.load(weights_only) + save_file", ...measured(python, baseline) });
}
const best = (tool) => rows.filter((r) => r.tool === tool).reduce((a, b) => (a.seconds <= b.seconds ? a : b));
const s = best("stmerge convert");
const t = best("torch.load(weights_only) + save_file");
const gb = (statSync(input).size / 1e9).toFixed(2);
console.log(`\nconvert ${gb} GB F32 SD1.5-layout zip checkpoint (${cpus().length} CPUs, ${Math.round(totalmem() / 2 ** 30)} GiB RAM), best of 2`);
console.log(`| tool | wall s | peak RSS MB |\n|---|---|---|`);
for (const r of [s, t]) console.log(`| ${r.tool} | ${r.seconds.toFixed(2)} | ${r.rssMB} |`);
console.log(`ratio stmerge/torch wall: ${(s.seconds / t.seconds).toFixed(3)} (target ≤ 0.35), stmerge peak RSS ${s.rssMB} MB (target < 1024)`);
const verify = spawnSync(process.execPath, [cli, "verify", input, ours, "--quiet"], { encoding: "utf8" });
console.log(`stmerge verify of its own output: exit ${verify.status}${verify.stdout ? `, ${verify.stdout.trim().split("\n").pop()}` : ""}`);
