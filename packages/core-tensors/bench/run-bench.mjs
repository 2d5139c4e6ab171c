#!/usr/bin/env node
// Benchmarks for @stmerge/core-tensors (run by `pnpm bench`, or `npm run bench` here; builds first).
//  1. safetensors read throughput: our reader, tensor by tensor into a reused buffer, vs plain
//     fs positioned reads of the same byte ranges, on a ~1 GiB file generated under .bench/.
//  2. Kernel throughput (elements/s) per dtype with 1 worker thread (per thread) and with 2, for the
//     JavaScript kernels and the WebAssembly SIMD ones (same bits), copying blocks through each
//     thread's memory and in place on a kernel arena, with the 1-minute load average beside each
//     figure (the machine may be shared).
//  3. TIES's cut in a window list (cutInList) and its count of cut-equal entries (countEqual) on
//     the calling thread, JavaScript vs WebAssembly SIMD, on a list shaped like a merge's.
// Environment: STMERGE_BENCH_MB (file size, default 1024), STMERGE_BENCH_ELEMENTS (default 32M),
// STMERGE_BENCH_ONLY=kernels (skip the file benchmarks), STMERGE_BENCH_ONLY=cut (only 3).
import { execFileSync } from "node:child_process";
import { mkdir, open, rm, stat } from "node:fs/promises";
import { availableParallelism, cpus, loadavg } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
// By package name (its own, exports resolve it to dist/ after a build): the bench test bundles it from the sources.
import { countEqual, createCpuKernelBackend, createSafetensorsWriter, cutInList, openSafetensors } from "@stmerge/core-tensors";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const benchDir = join(root, ".bench", "core-tensors");
const fileMB = Number(process.env.STMERGE_BENCH_MB ?? 1024);
const elements = Number(process.env.STMERGE_BENCH_ELEMENTS ?? 32 * 1024 * 1024);
const TENSOR_BYTES = 16 * 1024 * 1024;
const REPEATS = 3;

const fmt = (n, digits = 0) => n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const rows = [];
function row(what, method, value, unit) {
  rows.push([what, method, `${fmt(value, value < 100 ? 1 : 0)} ${unit}`, fmt(loadavg()[0], 1)]);
}

/** Best (shortest) of `repeats` timed runs, in seconds. */
async function best(repeats, fn) {
  let min = Infinity;
  for (let i = 0; i < repeats; i++) {
    const t0 = process.hrtime.bigint();
    await fn();
    min = Math.min(min, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  return min;
}

async function makeFile(path) {
  const count = Math.max(1, Math.round((fileMB * 1024 * 1024) / TENSOR_BYTES));
  const descriptors = Array.from({ length: count }, (_, i) => ({ name: `model.layers.${i}.weight`, dtype: "F16", shape: [TENSOR_BYTES / 2 / 4096, 4096], byteLength: TENSOR_BYTES }));
  const chunk = new Uint8Array(TENSOR_BYTES);
  for (let i = 0; i < chunk.length; i++) chunk[i] = (i * 2654435761) >>> 24;
  const sink = createSafetensorsWriter(path, { overwrite: true });
  const seconds = await best(1, async () => {
    await sink.begin(descriptors, { format: "pt" });
    for (const d of descriptors) await sink.write(d.name, chunk);
    await sink.commit();
  });
  row("safetensors write", "createSafetensorsWriter (incl. fsync)", (count * TENSOR_BYTES) / 1e6 / seconds, "MB/s");
}

async function readBenchmarks(path) {
  const size = (await stat(path)).size;
  const buffer = new Uint8Array(TENSOR_BYTES);
  const ours = async () => {
    const source = await openSafetensors(path);
    for (const d of source.descriptors) await source.read(d.name, buffer);
    await source.close();
  };
  // The baseline reads the same ranges with plain positioned FileHandle reads.
  const source = await openSafetensors(path);
  const ranges = source.descriptors.map((d) => [source.fileOffsetOf(d.name), d.byteLength]);
  await source.close();
  const plain = async () => {
    const handle = await open(path, "r");
    for (const [position, length] of ranges) {
      let done = 0;
      while (done < length) done += (await handle.read(buffer, done, length - done, position + done)).bytesRead;
    }
    await handle.close();
  };
  await plain(); // warm the page cache so both measure the same thing
  row("safetensors read (warm cache)", "openSafetensors + read(name, into)", size / 1e6 / (await best(REPEATS, ours)), "MB/s");
  row("safetensors read (warm cache)", "plain fs FileHandle.read (baseline)", size / 1e6 / (await best(REPEATS, plain)), "MB/s");
}

const KERNEL_OPS = ["F16 -> F32", "BF16 -> F32", "F8_E4M3 -> F32", "F8_E5M2 -> F32", "F32 -> F16 (RNE)", "F32 -> BF16 (RNE)", "F32 -> F8_E4M3 (RNE, saturating)", "F32 -> F8_E5M2 (RNE)", "weightedSum F32 (3 inputs)", "weightedSumEncoded (3 x F16 -> F16)", "weightedSumEncoded (3 x BF16 -> BF16)", "dareMergeEncoded (3 x F16 -> F16, p 0.5)", "dotAndNormsEncoded (2 x F16)", "consensusEncoded (3 x F16 -> F16, E 4)", "addDifferenceEncoded (3 x F16 -> F16)", "trainDifferenceEncoded (3 x F16 -> F16)", "dareMergeEncoded (4 x F16 -> F16, p 0.5)", "tiesMergeEncoded (3 x F16 -> F16)", "tiesMergeEncoded (4 x F16 -> F16)", "addLowRankProduct (rank 32, 1024 columns)"];

// Kernel sets: the JavaScript kernels, the WebAssembly SIMD ones copying blocks through each
// thread's memory, and the SIMD ones in place on arrays in a kernel arena (the merge executor's).
const KERNEL_SETS = ["JavaScript", "WebAssembly SIMD", "WebAssembly SIMD, in place (arena)"];

/**
 * Each kernel set runs in its own child process (two backends in one process skewed the figures:
 * the same JS code ran up to 2x slower in one of them), the sets taken in turn over two rounds
 * (the second in reverse order); each figure is the best run of its set.
 */
async function codecBenchmarks() {
  for (const workers of [1, 2]) {
    const bestSeconds = new Map();
    const sets = KERNEL_SETS.map((_, set) => set);
    for (const order of [sets, [...sets].reverse()]) {
      for (const set of order) {
        const output = execFileSync(process.execPath, [fileURLToPath(import.meta.url)], { env: { ...process.env, STMERGE_BENCH_KERNEL_CHILD: `${workers},${set}` }, encoding: "utf8" });
        for (const [what, seconds] of Object.entries(JSON.parse(output))) {
          const key = `${what}|${set}`;
          bestSeconds.set(key, Math.min(bestSeconds.get(key) ?? Infinity, seconds));
        }
      }
    }
    for (const what of KERNEL_OPS) {
      for (const set of sets) row(what, `${workers} thread${workers > 1 ? "s" : ""}, ${KERNEL_SETS[set]}`, elements / 1e6 / bestSeconds.get(`${what}|${set}`), "M elem/s");
    }
  }
}

/**
 * cutInList and countEqual on the calling thread (where merge-engine's ties runs them), the
 * JavaScript ops (STMERGE_KERNELS=js) and the WebAssembly SIMD ones taken in turn: a list of 1 Mi
 * magnitudes spread over a window of 2^21 bit patterns (the largest SD1.5 key lists about that
 * many, over a few of the F32 magnitudes' 16-bit bins), the cut a third of the way down.
 */
async function cutBenchmarks() {
  const n = 1 << 20;
  const lo = 0x3c000000;
  const hi = lo + (1 << 21) - 1;
  const values = new Uint32Array(n);
  let x = 1;
  for (let i = 0; i < n; i++) values[i] = lo + ((x = (Math.imul(x, 1664525) + 1013904223) >>> 0) >>> 11);
  const saved = process.env.STMERGE_KERNELS;
  const sets = [["JavaScript", "js"], ["WebAssembly SIMD", undefined]];
  const bestOf = new Map();
  for (const order of [sets, [...sets].reverse()])
    for (const [name, env] of order) {
      if (env === undefined) delete process.env.STMERGE_KERNELS;
      else process.env.STMERGE_KERNELS = env;
      for (let i = 0; i < 3; i++) cutInList(values, lo, hi, Math.floor(n / 3));
      const cut = await best(7, () => cutInList(values, lo, hi, Math.floor(n / 3)));
      const count = await best(7, () => countEqual(values, 0, n, values[12345]));
      bestOf.set(name, [Math.min(cut, bestOf.get(name)?.[0] ?? Infinity), Math.min(count, bestOf.get(name)?.[1] ?? Infinity)]);
    }
  if (saved === undefined) delete process.env.STMERGE_KERNELS;
  else process.env.STMERGE_KERNELS = saved;
  for (const [name] of sets) row("cutInList (1 Mi entries, calling thread)", name, n / 1e6 / bestOf.get(name)[0], "M entries/s");
  for (const [name] of sets) row("countEqual (1 Mi entries, calling thread)", name, n / 1e6 / bestOf.get(name)[1], "M entries/s");
}

/** In a child: times every kernel op for one kernel set (KERNEL_SETS) and prints { op: best seconds } as JSON. */
async function kernelChild(workers, set) {
  const backend = createCpuKernelBackend({ workers, simd: set > 0 });
  const arena = set === 2 ? backend.createArena() : undefined;
  if (set === 2 && !arena) throw new Error("this backend makes no kernel arena");
  // The arrays the ops read and write (the ops' own outputs, if any, are the backend's).
  const memory = arena ?? backend;
  const values = memory.allocF32(elements);
  for (let i = 0; i < elements; i++) values[i] = Math.sin(i) * 100;
  const f16 = memory.allocBytes(elements * 2);
  const bf16 = memory.allocBytes(elements * 2);
  const f8 = memory.allocBytes(elements);
  const f8e5 = memory.allocBytes(elements);
  const f8out = memory.allocBytes(elements);
  const f16b = memory.allocBytes(elements * 2);
  const f16c = memory.allocBytes(elements * 2);
  const out = memory.allocF32(elements);
  const out2 = memory.allocF32(elements);
  const f16out = memory.allocBytes(elements * 2);
  await backend.encode(values, "F16", f16);
  await backend.encode(values, "BF16", bf16);
  await backend.encode(values, "F8_E4M3", f8);
  await backend.encode(values, "F8_E5M2", f8e5);
  f16b.set(f16);
  f16c.set(f16);
  // Consensus on three equal inputs would take its flat-column case everywhere: two more that differ.
  const f16d = memory.allocBytes(elements * 2);
  const f16e = memory.allocBytes(elements * 2);
  const shifted = memory.allocF32(elements);
  for (let i = 0; i < elements; i++) shifted[i] = Math.sin(i * 1.3) * 100;
  await backend.encode(shifted, "F16", f16d);
  for (let i = 0; i < elements; i++) shifted[i] = Math.cos(i) * 100;
  await backend.encode(shifted, "F16", f16e);
  const lowRankRows = Math.max(1, Math.floor(elements / 1024));
  const lowRankW = memory.allocF32(lowRankRows * 1024);
  const lowRankUp = memory.allocF32(lowRankRows * 32);
  const lowRankDown = memory.allocF32(32 * 1024);
  for (let i = 0; i < lowRankW.length; i++) lowRankW[i] = Math.sin(i);
  for (let i = 0; i < lowRankUp.length; i++) lowRankUp[i] = Math.cos(i) * 0.01;
  for (let i = 0; i < lowRankDown.length; i++) lowRankDown[i] = Math.sin(i * 1.7) * 0.01;
  const bf16b = memory.allocBytes(elements * 2);
  const bf16c = memory.allocBytes(elements * 2);
  bf16b.set(bf16);
  bf16c.set(bf16);
  const fns = [
    () => backend.decode(f16, "F16", out),
    () => backend.decode(bf16, "BF16", out),
    () => backend.decode(f8, "F8_E4M3", out),
    () => backend.decode(f8e5, "F8_E5M2", out),
    () => backend.encode(values, "F16", f16out),
    () => backend.encode(values, "BF16", f16out),
    () => backend.encode(values, "F8_E4M3", f8out),
    () => backend.encode(values, "F8_E5M2", f8out),
    () => backend.weightedSum([values, out, values], [0.5, 0.3, 0.2], out2),
    () => backend.weightedSumEncoded([{ bytes: f16, dtype: "F16" }, { bytes: f16b, dtype: "F16" }, { bytes: f16c, dtype: "F16" }], [0.5, 0.3, 0.2], "F16", f16out),
    () => backend.weightedSumEncoded([{ bytes: bf16, dtype: "BF16" }, { bytes: bf16b, dtype: "BF16" }, { bytes: bf16c, dtype: "BF16" }], [0.5, 0.3, 0.2], "BF16", f16out),
    // DARE's keep masks (counter-based draws of two seeds, from element 0) and its drop and combine, per element of the output.
    () => backend.dareMergeEncoded({ bytes: f16, dtype: "F16" }, [{ bytes: f16b, dtype: "F16" }, { bytes: f16c, dtype: "F16" }], [1234, 5678], 0, 0.5, [0.6, 0.4], 1, false, "F16", f16out),
    () => backend.dotAndNormsEncoded({ bytes: f16, dtype: "F16" }, { bytes: f16b, dtype: "F16" }),
    () => backend.consensusEncoded([{ bytes: f16, dtype: "F16" }, { bytes: f16d, dtype: "F16" }, { bytes: f16e, dtype: "F16" }], 4, "F16", f16out),
    () => backend.addDifferenceEncoded({ bytes: f16, dtype: "F16" }, { bytes: f16d, dtype: "F16" }, { bytes: f16e, dtype: "F16" }, 0.7, "F16", f16out),
    () => backend.trainDifferenceEncoded({ bytes: f16, dtype: "F16" }, { bytes: f16d, dtype: "F16" }, { bytes: f16e, dtype: "F16" }, 1.26, "F16", f16out),
    // Three task vectors: the kernels of any number of them (two take registers of their own).
    () => backend.dareMergeEncoded({ bytes: f16, dtype: "F16" }, [{ bytes: f16d, dtype: "F16" }, { bytes: f16e, dtype: "F16" }, { bytes: f16b, dtype: "F16" }], [1234, 5678, 9012], 0, 0.5, [0.5, 0.3, 0.2], 1, false, "F16", f16out),
    // TIES's merge pass with its cuts at |δ| = 50 (about a third kept), no cut-equal quota.
    () => backend.tiesMergeEncoded({ bytes: f16, dtype: "F16" }, [{ bytes: f16d, dtype: "F16" }, { bytes: f16e, dtype: "F16" }], [0.6, 0.4], [50, 50], [0, 0], 1, "F16", f16out),
    () => backend.tiesMergeEncoded({ bytes: f16, dtype: "F16" }, [{ bytes: f16d, dtype: "F16" }, { bytes: f16e, dtype: "F16" }, { bytes: f16b, dtype: "F16" }], [0.5, 0.3, 0.2], [50, 50, 50], [0, 0, 0], 1, "F16", f16out),
    // LoRA's W += f·up·down, per element of W (64 flops each).
    () => backend.addLowRankProduct(lowRankW, lowRankUp, lowRankDown, { rows: lowRankRows, rank: 32, cols: 1024, rowOffset: 0 }, 0.8),
  ];
  // Warm-up: starts the workers and lets the JIT optimise each loop before timing.
  for (let i = 0; i < 3; i++) for (const fn of fns) await fn();
  const result = {};
  for (const [i, fn] of fns.entries()) result[KERNEL_OPS[i]] = await best(REPEATS + 2, fn);
  arena?.release();
  await backend.close();
  process.stdout.write(JSON.stringify(result));
}

const child = process.env.STMERGE_BENCH_KERNEL_CHILD;
if (child) {
  const [workers, set] = child.split(",").map(Number);
  await kernelChild(workers, set);
  process.exit(0);
}

await mkdir(benchDir, { recursive: true });
const file = join(benchDir, "bench-read.safetensors");
const only = process.env.STMERGE_BENCH_ONLY;
const kernelsOnly = only === "kernels" || only === "cut";
const startLoad = loadavg();
try {
  if (!kernelsOnly) {
    await makeFile(file);
    await readBenchmarks(file);
  }
  if (only !== "cut") await codecBenchmarks();
  await cutBenchmarks();
} finally {
  await rm(file, { force: true });
}

const header = ["benchmark", "method", "throughput", "load (1 min)"];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
const line = (cells) => cells.map((c, i) => (i >= 2 ? c.padStart(widths[i]) : c.padEnd(widths[i]))).join("  ");
process.stdout.write(`core-tensors benchmarks ${new Date().toISOString()}: node ${process.version}, ${cpus()[0]?.model ?? "cpu"}, ${availableParallelism()} cores, ${only === "cut" ? "cutInList only" : kernelsOnly ? "kernels only" : `file ${fmt(fileMB)} MiB`}, ${fmt(elements)} elements, load average ${startLoad.map((x) => fmt(x, 1)).join(" ")} at start, ${loadavg().map((x) => fmt(x, 1)).join(" ")} at end\n`);
process.stdout.write(`${line(header)}\n${widths.map((w) => "-".repeat(w)).join("  ")}\n${rows.map(line).join("\n")}\n`);
