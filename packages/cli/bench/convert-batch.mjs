// Benchmark: `stmerge convert <folder>` on 50 small and 3 larger real torch files, against a
// shell loop of single `stmerge convert <file>` commands and against the I/O floor (read every
// input once, write every output's bytes once and fsync it, no compute), for --jobs 1, 2 and 3.
// Inputs are written once by make_batch_inputs.py (real PyTorch) into <repo>/.bench (git-ignored).
//   pnpm build && node packages/cli/bench/convert-batch.mjs
// STMERGE_BIN=<bundled stmerge.js> runs another build (e.g. a test bundle from apps/stmerge/.tmp).
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { cpus, loadavg, tmpdir, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const python = join(repo, ".venv-oracle/bin/python");
const inputs = join(repo, ".bench/batch-inputs");
const bin = resolve(process.env.STMERGE_BIN ?? join(repo, "apps/stmerge/dist/stmerge.js"));
const REPEAT = Number(process.env.STMERGE_BENCH_REPEAT ?? 2);
// STMERGE_BENCH_SETS=small runs one set; STMERGE_BENCH_QUICK=1 times only --jobs 2 with and without the cache.
const SETS = (process.env.STMERGE_BENCH_SETS ?? "small,large").split(",");
const QUICK = process.env.STMERGE_BENCH_QUICK === "1";

if (!existsSync(bin)) {
  console.log(`skipped: ${bin} is missing; run \`pnpm build\` first (or set STMERGE_BIN)`);
  process.exit(0);
}
if (!existsSync(join(inputs, "large"))) {
  if (!existsSync(python)) {
    console.log(`skipped: no inputs in ${inputs} and no Python venv at ${python} to write them`);
    process.exit(0);
  }
  execFileSync(python, [join(here, "make_batch_inputs.py"), inputs], { stdio: "inherit" });
}

const filesOf = (dir) => readdirSync(dir).sort().map((f) => join(dir, f));
const bytesOf = (files) => files.reduce((n, f) => n + statSync(f).size, 0);

function run(args, cwd) {
  const started = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd, encoding: "utf8", env: { PATH: process.env.PATH, HOME: cwd, STMERGE_CACHE: join(cwd, "cache.json"), STMERGE_NO_BANNER: "1" }, maxBuffer: 1 << 26 });
  if (r.status !== 0) throw new Error(`stmerge ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
  return (performance.now() - started) / 1000;
}

/** Read each input fully, write each output's size (fsync'd, as the converter's atomic commit does). */
async function ioFloor(files, outputSizes, dir) {
  const chunk = Buffer.allocUnsafe(16 << 20);
  const started = performance.now();
  for (let i = 0; i < files.length; i++) {
    const h = await open(files[i], "r");
    const size = (await h.stat()).size;
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await h.read(chunk, 0, chunk.length, pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
    }
    await h.close();
    const out = await open(join(dir, `floor-${i}`), "w");
    for (let pos = 0; pos < outputSizes[i]; pos += chunk.length) await out.write(chunk, 0, Math.min(chunk.length, outputSizes[i] - pos), pos);
    await out.sync();
    await out.close();
  }
  return (performance.now() - started) / 1000;
}

const rows = [];
for (const set of SETS) {
  const files = filesOf(join(inputs, set));
  const inBytes = bytesOf(files);
  spawnSync("sh", ["-c", 'cat "$@" > /dev/null', "sh", ...files]); // warm page cache: both sides read from memory
  const best = {};
  const time = (name, fn) => {
    for (let i = 0; i < REPEAT; i++) {
      const cwd = mkdtempSync(join(tmpdir(), "stmerge-bench-batch-"));
      try {
        const s = fn(cwd);
        best[name] = Math.min(best[name] ?? Infinity, s);
      } finally {
        rmSync(cwd, { recursive: true, force: true });
      }
    }
  };
  let outputSizes = [];
  for (const jobs of QUICK ? [2] : [1, 2, 3]) {
    time(`batch --jobs ${jobs}`, (cwd) => {
      const s = run(["convert", join(inputs, set), "--output-dir", join(cwd, "out"), "--jobs", String(jobs)], cwd);
      outputSizes = files.map((f) => statSync(join(cwd, "out", f.split("/").pop().replace(/\.\w+$/, ".safetensors"))).size);
      return s;
    });
  }
  // The metadata cache's share (records are committed in batches, not one locked write per file).
  time("batch --jobs 2 --no-cache", (cwd) => run(["convert", join(inputs, set), "--output-dir", join(cwd, "out"), "--jobs", "2", "--no-cache"], cwd));
  if (!QUICK) time("loop of single converts", (cwd) => files.reduce((n, f, i) => n + run(["convert", f, "-o", join(cwd, `out-${i}.safetensors`)], cwd), 0));
  const floorDir = mkdtempSync(join(tmpdir(), "stmerge-bench-floor-"));
  try {
    const floors = [];
    for (let i = 0; i < REPEAT; i++) floors.push(await ioFloor(files, outputSizes, floorDir));
    best["I/O floor (read inputs, write outputs)"] = Math.min(...floors);
  } finally {
    rmSync(floorDir, { recursive: true, force: true });
  }
  const floor = best["I/O floor (read inputs, write outputs)"];
  for (const [name, s] of Object.entries(best)) rows.push({ set: `${files.length} ${set} (${(inBytes / 1e6).toFixed(0)} MB)`, run: name, seconds: s.toFixed(2), "files/s": (files.length / s).toFixed(1), "GB/s": (inBytes / 1e9 / s).toFixed(3), "x floor": (s / floor).toFixed(2) });
}
console.log(`machine: ${cpus().length} x ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB; load average ${loadavg().map((l) => l.toFixed(1)).join(" ")}; ${new Date().toISOString()}; best of ${REPEAT}; metadata cache on (default)`);
console.table(rows);
