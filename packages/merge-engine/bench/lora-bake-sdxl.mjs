// Benchmark: bake a rank-32 kohya LoRA (986 modules: UNet transformers + both text encoders,
// te2 q/k/v into in_proj rows) into a full-size synthetic SDXL F16 checkpoint, vs the I/O floor
// (read the checkpoint once, write the same size, fsync). Inputs are generated into
// <repo>/.bench (git-ignored) and removed afterwards unless --keep. Run after a build:
//   (cd packages/core-tensors && npx tsup) && (cd packages/merge-engine && npx tsup) && node packages/merge-engine/bench/lora-bake-sdxl.mjs
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { measuredRun } from "../../../tools/bench/measured-run.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const layout = join(repo, "packages/merge-engine/test/fixtures/layouts/sdxl-sgm.json.gz");
const benchDir = join(repo, ".bench");
const python = existsSync(join(repo, ".venv-oracle/bin/python")) ? join(repo, ".venv-oracle/bin/python") : "python3";
mkdirSync(benchDir, { recursive: true });
const checkpoint = join(benchDir, "sdxl-synthetic.safetensors");
const lora = join(benchDir, "sdxl-lora-r32.safetensors");
const output = join(benchDir, "sdxl-baked.safetensors");
if (!existsSync(checkpoint)) execFileSync(process.execPath, [join(repo, "tools/bench/synthetic-checkpoint.mjs"), "sdxl-sgm", checkpoint, "--dtype", "F16", "--seed", "5"], { stdio: "inherit" });
if (!existsSync(lora)) execFileSync(python, [join(here, "make_sdxl_lora.py"), layout, lora, "--rank", "32"], { stdio: "inherit" });

execFileSync("cat", [checkpoint], { stdio: ["ignore", "ignore", "inherit"] }); // warm the page cache
const load = loadavg()[0];
// CPU time (user + sys, all threads) is shown because shared machines make wall time noisy.
const line = (name, r) => `${name.padEnd(20)} ${r.wall.toFixed(2).padStart(7)} s wall  ${r.cpu.toFixed(1).padStart(7)} s CPU  ${r.rssMB.toFixed(0).padStart(6)} MB peak RSS`;
console.log(`machine: ${cpus().length} cores (${cpus()[0]?.model ?? "?"}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; load ${load.toFixed(1)}; ${new Date().toISOString().slice(0, 10)}; warm page cache`);
const floor = measuredRun("node", [join(here, "io-floor.mjs"), join(benchDir, "io_floor.tmp"), checkpoint]);
console.log(line("I/O floor", floor));
// The bake writes its output past the page cache, as the direct floor does.
const directFloor = measuredRun("node", [join(here, "io-floor.mjs"), "--direct", join(benchDir, "io_floor.tmp"), checkpoint]);
console.log(line("I/O floor, direct", directFloor));
rmSync(join(benchDir, "io_floor.tmp"), { force: true });
const bake = measuredRun("node", [join(here, "lora-bake-child.mjs"), checkpoint, lora, output]);
console.log(line("lora bake rank 32", bake), bake.stdout);
console.log(`bake / direct floor: ${(bake.wall / directFloor.wall).toFixed(2)}x`);
console.log(`load average after: ${loadavg()[0].toFixed(1)}`);
if (!process.argv.includes("--keep")) for (const f of [checkpoint, lora, output]) rmSync(f, { force: true });
