#!/usr/bin/env node
// Benchmark of @stmerge/model-library (run by `pnpm bench`, or `npm run bench` here; builds first):
// scan + duplicate search of a 100,000-file A1111 + ComfyUI tree (bench/large-tree.mjs) with
// `STMERGE_BENCH_BIG_PAIRS` (default 20) duplicated random files of `STMERGE_BENCH_BIG_MB` MiB
// (default 8), first with an empty metadata cache ("cold") then with the filled one ("warm").
// With STMERGE_BENCH_DROP_CACHES=1 (root on Linux) the OS page cache is dropped before the cold
// run; off by default because it slows every other process on the machine.
// I/O floors: GNU find listing size and inode of every file (the walk), openssl SHA-256 of
// the duplicated big files (the full hashes).
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openModelCache } from "@stmerge/cache";
import { findDuplicates, scanLibrary } from "../dist/index.js";
import { makeLargeTree } from "./large-tree.mjs";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const benchDir = join(root, ".bench", "model-library");
const bigPairs = Number(process.env.STMERGE_BENCH_BIG_PAIRS ?? 20);
const bigMB = Number(process.env.STMERGE_BENCH_BIG_MB ?? 8);
const tree = join(benchDir, `tree-${bigPairs}x${bigMB}`);
const roots = [join(tree, "a1111"), join(tree, "comfy")];
const cacheFile = join(benchDir, "model_cache.json");
const say = (line) => process.stdout.write(`${line}\n`);
const secs = (ms) => `${(ms / 1000).toFixed(2)} s`;

function dropPageCache() {
  spawnSync("sync");
  try {
    writeFileSync("/proc/sys/vm/drop_caches", "3");
    return true;
  } catch {
    return false;
  }
}

function timed(fn) {
  const t0 = performance.now();
  const r = fn();
  return { r, ms: performance.now() - t0 };
}

if (!existsSync(join(tree, "done"))) {
  say(`building ${tree} ...`);
  await rm(tree, { recursive: true, force: true });
  makeLargeTree(tree, { bigPairs, bigBytes: bigMB * 1024 * 1024 });
  writeFileSync(join(tree, "done"), "");
}
await rm(cacheFile, { force: true });
const cache = openModelCache({ path: cacheFile });

async function run(label) {
  const dropped = label === "cold" && process.env.STMERGE_BENCH_DROP_CACHES === "1" ? dropPageCache() : false;
  const t0 = performance.now();
  const scan = await scanLibrary(roots, { sniff: "none" });
  const t1 = performance.now();
  const found = await findDuplicates(scan, { cache });
  const t2 = performance.now();
  say(
    `${label.padEnd(5)} scan ${secs(t1 - t0)} (${scan.files.length.toLocaleString("en-US")} files) · duplicates ${secs(t2 - t1)} (${found.groups.length} groups, ` +
      `${found.stats.partialHashed} sampled, ${found.stats.fullHashed} full SHA-256, ${found.stats.fromCache} from cache, ${(found.stats.bytesRead / 1e6).toFixed(1)} MB read)` +
      ` · total ${secs(t2 - t0)}${label === "cold" ? (dropped ? " (page cache dropped)" : " (page cache not dropped)") : ""}`,
  );
}

say(`machine: ${cpus()[0]?.model ?? "?"} × ${cpus().length}, Node ${process.versions.node}, load ${loadavg().map((l) => l.toFixed(1)).join(" ")}, ${new Date().toISOString()}`);
await run("cold");
await run("warm");
const find = timed(() => spawnSync("sh", ["-c", `find ${roots.join(" ")} -type f -printf '%s %i\\n' | wc -l`], { encoding: "utf8" }));
say(`floor: find -printf size+inode over the tree ${secs(find.ms)} (${find.r.stdout.trim()} files)`);
const big = timed(() => spawnSync("sh", ["-c", `find ${roots.join(" ")} -name 'big-*' -print0 | xargs -0 -r openssl dgst -sha256 | wc -l`], { encoding: "utf8" }));
say(`floor: openssl dgst -sha256 of the ${2 * bigPairs} big files ${secs(big.ms)} (page cache warm)`);
