#!/usr/bin/env node
// Benchmarks for @stmerge/cache (run by `pnpm bench`, or `npm run bench` here; builds first).
//  1. SHA-256 alone vs `openssl dgst -sha256` (and `sha256sum`) on the same ~2 GiB file (page cache warm).
//  2. All six hashes (SHA256, AutoV1, AutoV2, AutoV3, CRC32, BLAKE3) in one pass, on worker lanes and inline.
//  3. `cache add` of an unchanged folder of 1000 small model files: library call and the bundled CLI.
// Environment: STMERGE_BENCH_MB (file size, default 2048), STMERGE_BENCH_FILES (default 1000).
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, open, rm, stat, writeFile } from "node:fs/promises";
import { availableParallelism, cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { HASH_ALGORITHMS, blake3Backend, collectModelFiles, hashFile, openModelCache } from "../dist/index.js";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const benchDir = join(root, ".bench", "cache");
const fileMB = Number(process.env.STMERGE_BENCH_MB ?? 2048);
const fileCount = Number(process.env.STMERGE_BENCH_FILES ?? 1000);
const REPEATS = Number(process.env.STMERGE_BENCH_REPEATS ?? 3);
const CHUNK = 16 * 1024 * 1024;

const fmt = (n, digits = 2) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

/** CPU seconds (all threads of this process) of the fastest run, set by `best`. */
let lastCpu = 0;

async function best(repeats, fn) {
  let min = Infinity;
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    await fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    if (wall < min) {
      const c = process.cpuUsage(c0);
      lastCpu = (c.user + c.system) / 1e6;
    }
    min = Math.min(min, wall);
  }
  return min;
}

async function makeBigFile(path) {
  const size = fileMB * 1024 * 1024;
  const existing = await stat(path).catch(() => undefined);
  if (existing?.size === size) return size;
  const handle = await open(path, "w");
  const chunk = Buffer.alloc(CHUNK);
  randomFillSync(chunk);
  // A plausible safetensors prefix: 8-byte header length, then the rest is "data".
  chunk.writeBigUInt64LE(4096n, 0);
  for (let off = 0; off < size; off += CHUNK) {
    chunk.writeUInt32LE(off / CHUNK, 8);
    await handle.write(chunk, 0, Math.min(CHUNK, size - off), off);
  }
  await handle.close();
  return size;
}

function tool(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: "utf8" });
  return r.status === 0 ? r.stdout : undefined;
}

await mkdir(benchDir, { recursive: true });
const big = join(benchDir, "big.bin");
const size = await makeBigFile(big);
const gib = size / 2 ** 30;
// Warm the page cache so every contender reads from memory.
spawnSync("cat", [big], { stdio: ["ignore", "ignore", "ignore"] });

const cpu = cpus()[0]?.model ?? "unknown CPU";
const openssl = (tool("openssl", ["version"]) ?? "openssl missing").trim();
console.log(`machine: ${cpu}, ${availableParallelism()} cores; Node ${process.version}; ${openssl}; BLAKE3 backend: ${blake3Backend()}`);
console.log(`file: ${fmt(size / 1e9)} GB (${fmt(gib)} GiB), page cache warm, best of ${REPEATS}\n`);

const rows = [];
// CPU seconds are this process's (all threads): shown for our own runs, where they tell what the
// work costs independent of other load on the machine.
const add = (what, seconds, baseline, cpu) => rows.push([what, `${fmt(seconds)} s`, `${fmt(size / 1e6 / seconds, 0)} MB/s`, baseline ? `${fmt(seconds / baseline)} ×` : "", cpu === undefined ? "" : `${fmt(cpu)} s`]);

const tOpenssl = await best(REPEATS, () => spawnSync("openssl", ["dgst", "-sha256", big], { stdio: "ignore" }));
add("openssl dgst -sha256 (baseline)", tOpenssl, tOpenssl);
if (tool("sha256sum", ["--version"])) add("sha256sum", await best(1, () => spawnSync("sha256sum", [big], { stdio: "ignore" })), tOpenssl);
const tSha = await best(REPEATS, () => hashFile(big, { algorithms: ["sha256"] }));
add("stmerge SHA-256 alone", tSha, tOpenssl, lastCpu);
const tSix = await best(REPEATS, () => hashFile(big, { algorithms: HASH_ALGORITHMS }));
add("stmerge all six, one pass (worker lanes)", tSix, tOpenssl, lastCpu);
const tSixInline = await best(1, () => hashFile(big, { algorithms: HASH_ALGORITHMS, threads: 1 }));
add("stmerge all six, one pass, one thread", tSixInline, tOpenssl, lastCpu);
const tTwoPass = await best(1, async () => {
  await hashFile(big, { algorithms: ["sha256"], threads: 1 });
  await hashFile(big, { algorithms: ["crc32"], threads: 1 });
});
add("SHA-256 then CRC32 in two passes (the Python tool's way)", tTwoPass, tOpenssl, lastCpu);

const w = [Math.max(...rows.map((r) => r[0].length)), 9, 11, 10, 8];
console.log(["what".padEnd(w[0]), "time".padStart(w[1]), "throughput".padStart(w[2]), "vs openssl".padStart(w[3]), "CPU".padStart(w[4])].join("  "));
for (const r of rows) console.log([r[0].padEnd(w[0]), ...r.slice(1).map((v, i) => v.padStart(w[i + 1]))].join("  "));
const load = (await import("node:os")).loadavg()[0];
console.log(`load average during the run: ${fmt(load)} on ${availableParallelism()} cores (other processes compete for the same cores)`);
console.log(`\ngoal SHA-256 ≥ 0.9 × openssl throughput: ${fmt(tOpenssl / tSha)} × → ${tOpenssl / tSha >= 0.9 ? "met" : "NOT met"}`);
console.log(`goal all six ≤ 1.5 × openssl time:       ${fmt(tSix / tOpenssl)} × → ${tSix / tOpenssl <= 1.5 ? "met" : "NOT met"}`);

// 3. cache add of an unchanged folder.
const folder = join(benchDir, "many");
await rm(folder, { recursive: true, force: true });
await mkdir(folder, { recursive: true });
const body = Buffer.alloc(4096);
for (let i = 0; i < fileCount; i++) {
  body.writeUInt32LE(i, 0);
  await writeFile(join(folder, `model-${String(i).padStart(4, "0")}.safetensors`), body);
}
const cacheFile = join(benchDir, "model_cache.json");
await rm(cacheFile, { force: true });
const cache = openModelCache({ path: cacheFile });
const tFirst = await best(1, async () => cache.identify(await collectModelFiles([folder])));
let reused = 0;
const tAgain = await best(REPEATS, async () => {
  const results = await cache.identify(await collectModelFiles([folder]));
  reused = results.filter((r) => r.fromCache).length;
});
console.log(`\ncache add of ${fileCount} files of 4 KiB: first run ${fmt(tFirst)} s (hashes all); unchanged folder ${fmt(tAgain)} s (library, ${reused}/${fileCount} from cache)`);
const bin = join(root, "apps", "stmerge", "dist", "stmerge.js");
if (existsSync(bin)) {
  let out = "";
  const tCli = await best(REPEATS, () => {
    const r = spawnSync(process.execPath, [bin, "cache", "add", folder, "--no-civitai", "--cache-file", cacheFile, "--json"], { encoding: "utf8" });
    out = r.stdout;
  });
  const parsed = (() => {
    try {
      return JSON.parse(out);
    } catch {
      return undefined;
    }
  })();
  console.log(`\`stmerge cache add\` (bundled CLI process, unchanged folder): ${fmt(tCli)} s, ${parsed ? `${parsed.fromCache} from cache, ${parsed.hashed} hashed` : "no JSON (rebuild the app: pnpm build)"}; goal < 1 s → ${tCli < 1 && parsed?.hashed === 0 ? "met" : "NOT met"}`);
} else {
  console.log("bundled CLI not built (pnpm build); skipped the CLI timing");
}
await rm(folder, { recursive: true, force: true });
