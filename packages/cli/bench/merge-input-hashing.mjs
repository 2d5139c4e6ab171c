// Benchmark: what hashing a merge's inputs in the merge pass costs (issue 11). Three synthetic
// inputs with the SD1 text encoder's real layout (about 246 MB each, F16, written by
// merge-engine's make-synthetic-checkpoint.mjs into <repo>/.bench/merge-input-hashing, git-ignored)
// are merged by weighted sum three ways, alternating, --no-cache, page cache warm:
//   known    the manifest gives every SHA-256: nothing hashed, the output hashed as it is written;
//   unknown  no SHA-256 given: inputs hashed from the merge's reads, header written last, the
//            output hashed by reading it back ("hash output" phase);
//   separate `stmerge hash --algo sha256` of the three inputs: the pass `known` needed beforehand.
//   pnpm build && node packages/cli/bench/merge-input-hashing.mjs
// STMERGE_BIN=<bundled stmerge.js> runs another build (e.g. a test bundle from apps/stmerge/.tmp).
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const bin = resolve(process.env.STMERGE_BIN ?? join(repo, "apps/stmerge/dist/stmerge.js"));
const work = join(repo, ".bench/merge-input-hashing");
const REPEAT = Number(process.env.STMERGE_BENCH_REPEAT ?? 3);

if (!existsSync(bin)) {
  console.log(`skipped: ${bin} is missing; run \`pnpm build\` first (or set STMERGE_BIN)`);
  process.exit(0);
}
mkdirSync(work, { recursive: true });
const inputs = [1, 2, 3].map((i) => join(work, `m${i}.safetensors`));
for (const [i, path] of inputs.entries()) {
  if (existsSync(path)) continue;
  execFileSync(process.execPath, [join(repo, "packages/merge-engine/bench/make-synthetic-checkpoint.mjs"), join(repo, "packages/merge-engine/test/fixtures/layouts/sd1-ldm.json.gz"), path, "--seed", String(i + 1), "--components", "clip_l"], { stdio: "inherit" });
}
const weights = [0.5, 0.3, 0.2];
const shas = inputs.map((p) => createHash("sha256").update(readFileSync(p)).digest("hex"));
const manifest = (withHashes) => JSON.stringify({ models: inputs.map((path, i) => ({ path, weight: weights[i], ...(withHashes ? { sha256: shas[i] } : {}) })), output: "out.safetensors" });
writeFileSync(join(work, "known.json"), manifest(true));
writeFileSync(join(work, "unknown.json"), manifest(false));

const env = { ...process.env, STMERGE_NO_BANNER: "1", STMERGE_CACHE: join(work, "cache.json") };
function time(args) {
  const started = performance.now();
  const r = spawnSync(process.execPath, [bin, ...args], { cwd: work, env, encoding: "utf8", maxBuffer: 64 << 20 });
  const seconds = (performance.now() - started) / 1000;
  if (r.status !== 0) throw new Error(`stmerge ${args.join(" ")} failed (${r.status}): ${r.stderr}`);
  return { seconds, doc: JSON.parse(r.stdout) };
}

console.log(`machine: ${cpus().length} × ${cpus()[0]?.model}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}; ${new Date().toISOString()}`);
const rows = [];
for (let round = 1; round <= REPEAT; round++) {
  const load = loadavg()[0].toFixed(1);
  const known = time(["merge", "-m", "known.json", "--device", "cpu", "--no-cache", "--overwrite", "--json"]);
  const unknown = time(["merge", "-m", "unknown.json", "--device", "cpu", "--no-cache", "--overwrite", "--json"]);
  const separate = time(["hash", ...inputs, "--algo", "sha256", "--no-cache", "--json"]);
  const phases = (doc) => doc.timings.phases.map((p) => `${p.phase} ${(p.elapsedMs / 1000).toFixed(1)}`).join(", ");
  const again = unknown.doc.hashedDuringMerge.reduce((n, h) => n + h.bytesReadAgain, 0);
  rows.push({ round, load, known: known.seconds, unknown: unknown.seconds, separate: separate.seconds });
  console.log(`round ${round} (load ${load}): known ${known.seconds.toFixed(1)} s [${phases(known.doc)}]; unknown ${unknown.seconds.toFixed(1)} s [${phases(unknown.doc)}; ${again} bytes re-read]; separate hash pass ${separate.seconds.toFixed(1)} s`);
  if (unknown.doc.models.some((m, i) => m.sha256 !== shas[i])) throw new Error("an input's SHA-256 learned in the merge differs from its true one");
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`median: known ${median(rows.map((r) => r.known)).toFixed(1)} s, unknown ${median(rows.map((r) => r.unknown)).toFixed(1)} s, known + separate hash pass ${median(rows.map((r) => r.known + r.separate)).toFixed(1)} s`);
