import { availableParallelism } from "node:os";
import { DTYPE_SIZE, isFloatDType, type DType } from "./dtypes.js";
import { briefly, dtypeNotEncodable, KernelError } from "./errors.js";
import { ArenaLease, SharedKernelArena } from "./kernel-arena.js";
import type { EncodedTensor, HistogramBins, KernelArena, KernelBackend, QuotaSpan, TaskVectorWindow, WindowPart } from "./kernel-backend.js";
import { assertLittleEndianHost, localCodecs, localOps, simdKernelsAvailable } from "./local-kernels.js";
import { checkSvdArgs, randomizedSvd, type TruncatedSvd } from "./randomized-svd.js";
import { settleAll } from "./settle-all.js";
import { type KernelJob, KernelWorkerPool } from "./worker-pool.js";

export interface CpuKernelBackendOptions {
  /** Worker threads; 0 runs everything on the calling thread. Default min(2, cores). */
  workers?: number;
  /** Jobs with fewer elements run inline: a worker round trip costs more than the work. */
  inlineBelow?: number;
  /**
   * Run the hot kernels (F16/BF16/F8 codecs, weighted sums, TIES's histogram and three-model
   * merge pass, DARE's masks and merge, slerp's statistics; see wasm-kernels-module) on
   * WebAssembly SIMD. Default: yes where
   * the engine supports it, unless STMERGE_KERNELS=js. false forces the JavaScript kernels,
   * which give the same bits.
   */
  simd?: boolean;
}

/**
 * combineTaskVectors' params, as mergekit's F32 tensors hold them: λ and the weights rounded to
 * F32, and the divisor of the plain mean their F32 sum in order (1 when it is below 1e-8 in
 * magnitude, that bound an F32 too).
 */
function combineParams(weights: readonly number[], lambda: number, electSign: boolean): Record<string, number> {
  const w32 = weights.map(Math.fround);
  const totalWeight = w32.reduce((s, w) => Math.fround(s + w), 0);
  const params: Record<string, number> = { lambda: Math.fround(lambda), elect: electSign ? 1 : 0, divisor: Math.abs(totalWeight) < Math.fround(1e-8) ? 1 : totalWeight };
  w32.forEach((w, k) => (params[`w${k}`] = w));
  return params;
}

export const DEFAULT_INLINE_BELOW = 1 << 18;

export function defaultWorkerCount(): number {
  return Math.max(1, Math.min(2, availableParallelism()));
}

function isShared(view: ArrayBufferView): boolean {
  return typeof SharedArrayBuffer !== "undefined" && view.buffer instanceof SharedArrayBuffer;
}

/** Whether `spans` lie on `ranges` exactly and their quotas add up to `quotas`, task vector by task vector. */
function spansSplit(spans: readonly QuotaSpan[] | undefined, ranges: readonly (readonly [number, number])[], quotas: readonly number[]): boolean {
  if (!spans || spans.length !== ranges.length) return false;
  if (!spans.every((s, r) => s.from === ranges[r]![0] && s.to === ranges[r]![1] && s.quotas.length === quotas.length && s.quotas.every((q) => Number.isInteger(q) && q >= 0))) return false;
  return quotas.every((q, k) => spans.reduce((sum, s) => sum + s.quotas[k]!, 0) === q);
}

function checkLength(name: string, actual: number, expected: number): void {
  if (actual !== expected) throw new KernelError("KERNEL_LENGTH_MISMATCH", `${name}: length ${actual} does not match ${expected}`);
}

/** DARE's draws: u32 stream seeds, and the key's index of element 0 (with the elements after it below 2^53). */
function checkDareDraws(seeds: readonly number[], offset: number): void {
  for (const seed of seeds) if (!(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) throw new KernelError("KERNEL_BAD_PARAM", `DARE stream seeds must be integers from 0 to 4294967295, got ${seed}`);
  if (!(Number.isSafeInteger(offset) && offset >= 0)) throw new KernelError("KERNEL_BAD_PARAM", `DARE draw offset must be a non-negative safe integer, got ${offset}`);
}

/** The kernels' DARE drop parameters: keep where the draw is ≥ ⌈p·2^32⌉ (draw/2^32 ≥ p, both scalings exact), and divide the kept deltas by the density 1 − p rounded to F32 (mergekit's division of an F32 tensor by it). */
function dareDrawParams(dropRate: number, offset: number): Record<string, number> {
  return { threshold: Math.ceil(dropRate * 4294967296), density: Math.fround(1 - dropRate), offset };
}

/** The consensus kernels loop over the exponent's bits: an integer from 0 to 2^31 − 1. */
function checkConsensusExponent(exponent: number): void {
  if (!(Number.isInteger(exponent) && exponent >= 0 && exponent <= 0x7fffffff)) throw new KernelError("KERNEL_BAD_PARAM", `consensus exponent must be an integer from 0 to 2147483647, got ${exponent}`);
}

/**
 * Kernels on the calling thread and a pool of worker threads. Large jobs over
 * SharedArrayBuffer-backed arrays are split by index range across the workers; anything else
 * (small jobs, plain ArrayBuffers) runs inline.
 */
export function createCpuKernelBackend(options: CpuKernelBackendOptions = {}): KernelBackend {
  assertLittleEndianHost();
  const workers = Math.max(0, Math.floor(options.workers ?? defaultWorkerCount()));
  const inlineBelow = options.inlineBelow ?? DEFAULT_INLINE_BELOW;
  const simd = (options.simd ?? true) && simdKernelsAvailable();
  const pool = workers > 0 ? new KernelWorkerPool(workers, { simd }) : undefined;
  let closed = false;
  // Shared scratch buffers between calls (the TIES window's per-thread lists):
  // a call takes its own while it runs; reusing them keeps a merge from leaving hundreds of MB
  // of them to the collector.
  const spareBuffers: Uint8Array[] = [];
  const takeSpareBuffer = (byteLength: number): Uint8Array => {
    let best = -1;
    spareBuffers.forEach((m, i) => {
      if (m.byteLength >= byteLength && (best < 0 || m.byteLength < spareBuffers[best]!.byteLength)) best = i;
    });
    // Rounded up to 64 KiB, so that chunks of similar sizes share buffers.
    return best >= 0 ? spareBuffers.splice(best, 1)[0]! : allocBytes(Math.ceil(byteLength / 65536) * 65536);
  };
  const giveBackSpareBuffers = (buffers: readonly Uint8Array[]): void => {
    spareBuffers.push(...buffers);
    // The largest few: enough for the calls in flight.
    spareBuffers.sort((x, y) => y.byteLength - x.byteLength).splice(8);
  };
  // Sets of per-thread TIES histogram bins (taskVectorHistogram), all zero between calls: one
  // per call in flight (several merge items compute at once), reused, so that a merge does not
  // leave thousands of them to the collector (they held 120 MB of a TIES merge's RSS).
  const spareBins: Uint32Array[] = [];
  // The memory of every kernel arena (createArena), made on first use; null: none can be made here.
  let arenaMemory: SharedKernelArena | null | undefined;

  /** A worker job; where its arrays live in the arena memory, the workers' kernels work on them in place. */
  function job(op: string, arrays: readonly ArrayBufferView[], from: number, to: number, params: Record<string, number>): KernelJob {
    if (arenaMemory) {
      const at = arrays.map((a) => arenaMemory!.addressOf(a));
      if (at.some((address) => address >= 0)) return { op, arrays, from, to, params, arena: { attachment: arenaMemory.attachment, at } };
    }
    return { op, arrays, from, to, params };
  }

  /** How [0, length) is split: one range per worker (or `pieces`), or undefined to run inline on this thread. */
  function splitRanges(arrays: readonly ArrayBufferView[], length: number, pieces = pool?.size ?? 1): [number, number][] | undefined {
    if (!pool || length < inlineBelow || !arrays.every(isShared)) return undefined;
    // Ranges on 64-element boundaries keep each worker's writes on its own cache lines.
    const step = Math.ceil(length / Math.max(1, pieces) / 64) * 64;
    const ranges: [number, number][] = [];
    for (let from = 0; from < length; from += step) ranges.push([from, Math.min(length, from + step)]);
    return ranges;
  }

  /** Runs `op` over `ranges` (inline over [0, length) when undefined), params per range; returns the per-range results. */
  async function runRanges(op: string, arrays: readonly ArrayBufferView[], length: number, ranges: [number, number][] | undefined, paramsOf: (range: number) => Record<string, number>): Promise<unknown[]> {
    if (closed) throw new KernelError("KERNEL_CLOSED", "kernel backend used after close()");
    if (!pool || !ranges) return [localOps(simd)[op]!(arrays, 0, length, paramsOf(0))];
    return settleAll(ranges.map(([from, to], p) => pool.run(p, job(op, arrays, from, to, paramsOf(p)))));
  }

  /** Runs `op` over [0, length); returns the per-range results (one when inline). */
  function run(op: string, arrays: readonly ArrayBufferView[], length: number, params: Record<string, number> = {}): Promise<unknown[]> {
    return runRanges(op, arrays, length, splitRanges(arrays, length), () => params);
  }

  function output(length: number, out: Float32Array | undefined, name: string): Float32Array {
    if (out === undefined) return allocF32(length);
    checkLength(`${name} output`, out.length, length);
    return out;
  }

  function allocF32(length: number): Float32Array {
    return new Float32Array(new SharedArrayBuffer(length * 4));
  }
  function allocBytes(byteLength: number): Uint8Array {
    return new Uint8Array(new SharedArrayBuffer(byteLength));
  }

  /** A view whose byteOffset is a multiple of `size`, copying when the input is misaligned. */
  function aligned(bytes: Uint8Array, size: number): Uint8Array {
    if (bytes.byteOffset % size === 0) return bytes;
    const copy = isShared(bytes) ? allocBytes(bytes.byteLength) : new Uint8Array(bytes.byteLength);
    copy.set(bytes);
    return copy;
  }

  /**
   * Where an op writes `out`'s elements of `size` bytes: `out` itself when aligned to them, else
   * a scratch of the same kind (shared or not) that the caller copies into `out` afterwards.
   */
  function alignedOutput(out: Uint8Array, size: number): Uint8Array {
    if (out.byteOffset % size === 0) return out;
    return isShared(out) ? allocBytes(out.byteLength) : new Uint8Array(out.byteLength);
  }

  /** An encoded input's bytes (aligned to its element size) and that size. */
  function encodedInput(name: string, { bytes, dtype }: EncodedTensor): [Uint8Array, number] {
    const size = DTYPE_SIZE[dtype];
    if (size === undefined) throw new KernelError("DTYPE_UNKNOWN", `${name}: cannot decode unknown dtype ${briefly(dtype)}`);
    if (bytes.byteLength % size !== 0) throw new KernelError("KERNEL_LENGTH_MISMATCH", `${name}: ${bytes.byteLength} bytes is not a whole number of ${size}-byte ${dtype} elements`);
    return [aligned(bytes, size), size];
  }

  /** The TIES statistics ops' encoded base and task-vector input: their bytes, element count and dtype codes (db, dx). */
  function taskVectorInputs(op: string, base: EncodedTensor, x: EncodedTensor): { arrays: [Uint8Array, Uint8Array]; length: number; codes: { db: number; dx: number } } {
    const codes = localCodecs().DTYPE_CODE;
    const [b, sb] = encodedInput(`${op} base`, base);
    const [v, sx] = encodedInput(`${op} input`, x);
    const length = b.byteLength / sb;
    checkLength(`${op} input elements`, v.byteLength / sx, length);
    return { arrays: [b, v], length, codes: { db: codes[base.dtype]!, dx: codes[x.dtype]! } };
  }

  /** TIES statistics (taskVectorHistogram and its encoded form): `op` over [base, x] into `into`'s 65536 bins; returns the bins it added to. */
  async function histogram(op: string, inputs: readonly ArrayBufferView[], length: number, params: Record<string, number>, into: Uint32Array): Promise<HistogramBins> {
    checkLength(`${op} bins`, into.length, 65536);
    // A range's job reports the bins it touched ([lo, hi]); the JavaScript kernel reports nothing: all.
    const touchedBy = (result: unknown): HistogramBins => (Array.isArray(result) ? (result as [number, number]) : [0, 65535]);
    const ranges = splitRanges(inputs, length);
    if (!ranges) {
      // Inline: straight into the caller's bins.
      const [result] = await runRanges(op, [...inputs, into], length, undefined, () => params);
      return touchedBy(result);
    }
    // One shared set of bins per thread range (spareBins): only the bins a range touched are added
    // to `into` and cleared again.
    const size = ranges.length * 65536;
    const spare = spareBins.findIndex((b) => b.length === size);
    const bins = spare >= 0 ? spareBins.splice(spare, 1)[0]! : new Uint32Array(new SharedArrayBuffer(size * 4));
    let clean = false;
    try {
      // allSettled: when one range fails, the others must finish before the bins are reused.
      const settled = await Promise.allSettled(ranges.map(([from, to], r) => pool!.run(r, job(op, [...inputs, bins.subarray(r * 65536, (r + 1) * 65536)], from, to, params))));
      for (const s of settled) if (s.status === "rejected") throw s.reason;
      let [low, high] = [65536, -1];
      settled.forEach((s, r) => {
        const [lo, hi] = touchedBy((s as PromiseFulfilledResult<unknown>).value);
        const o = r * 65536;
        for (let i = lo; i <= hi; i++) into[i]! += bins[o + i]!;
        if (lo <= hi) bins.fill(0, o + lo, o + hi + 1);
        low = Math.min(low, lo);
        high = Math.max(high, hi);
      });
      clean = true;
      return [low, high];
    } finally {
      if (!clean) bins.fill(0, 0, size);
      // As many as calls have been in flight at once, up to 8.
      if (spareBins.length < 8) spareBins.push(bins);
    }
  }

  /**
   * TIES's windows (taskVectorWindow, taskVectorWindowsEncoded and the encoded form of the
   * first): `op` over [base, x1, …], each task vector's magnitudes in its window into `into[K]`.
   * Each thread range writes its own lists, then they are copied into `into` in range order
   * (index order, as inline). A range's list is as long as the caller's (any range may hold them
   * all), or, where the caller says what fraction of the elements it expects in window K
   * (`expected[K]`), twice its range's share of that and 4096 more: a range that finds more than
   * that (and the caller's list has room for) runs again with lists as long as the caller's. The
   * staging of the largest keys' windows so takes a few MB where it took twice the lists (a TIES
   * merge of three SD1.5 checkpoints peaked 11–13 MB lower).
   */
  async function windows(op: string, inputs: readonly ArrayBufferView[], length: number, params: Record<string, number>, into: readonly Uint32Array[], expected?: readonly (number | undefined)[]): Promise<TaskVectorWindow[]> {
    // Each range's op returns [above1, inWindow1, …].
    const ranges = splitRanges(inputs, length);
    if (!ranges) {
      const counts = (await runRanges(op, [...inputs, ...into], length, undefined, () => params))[0] as number[];
      return into.map((_, k) => ({ above: counts[2 * k]!, inWindow: counts[2 * k + 1]!, parts: [{ from: 0, to: length, inWindow: counts[2 * k + 1]! }] }));
    }
    const rooms = into.map((list) => list.length);
    const roomsOf = (r: number, whole: boolean): number[] =>
      rooms.map((room, k) => {
        const fraction = expected?.[k];
        if (whole || fraction === undefined || !(fraction >= 0)) return room;
        const [from, to] = ranges[r]!;
        return Math.min(room, Math.ceil(2 * fraction * (to - from)) + 4096);
      });
    /** Runs range r with lists of `rangeRooms` in a spare buffer; returns its counts and lists (the buffer to give back). */
    const runRange = async (r: number, rangeRooms: readonly number[]): Promise<{ counts: number[]; lists: Uint32Array[]; buffer: Uint8Array }> => {
      const buffer = takeSpareBuffer(Math.max(1, rangeRooms.reduce((a, room) => a + room, 0) * 4));
      try {
        const all = new Uint32Array(buffer.buffer, buffer.byteOffset, buffer.byteLength >>> 2);
        let at = 0;
        const lists = rangeRooms.map((room) => all.subarray(at, (at += room)));
        const [from, to] = ranges[r]!;
        return { counts: (await pool!.run(r, job(op, [...inputs, ...lists], from, to, params))) as number[], lists, buffer };
      } catch (error) {
        giveBackSpareBuffers([buffer]);
        throw error;
      }
    };
    const buffers: Uint8Array[] = [];
    try {
      // allSettled: when one range fails, the others must finish before their lists are reused.
      const settled = await Promise.allSettled(ranges.map((_, r) => runRange(r, roomsOf(r, false))));
      for (const s of settled) if (s.status === "fulfilled") buffers.push(s.value.buffer);
      const results = settled.map((s) => {
        if (s.status === "rejected") throw s.reason;
        return s.value;
      });
      const found = into.map(() => ({ above: 0, inWindow: 0, parts: [] as WindowPart[] }));
      // Room left in the caller's list K after the ranges before.
      const left = (k: number) => rooms[k]! - Math.min(found[k]!.inWindow, rooms[k]!);
      for (const [r, result] of results.entries()) {
        let { counts, lists } = result;
        // More in some window than this range's list held, where the caller's list has room: again, with whole lists.
        const short = lists.some((list, k) => counts[2 * k + 1]! > list.length && list.length < left(k));
        if (short) {
          const again = await runRange(r, roomsOf(r, true));
          buffers.push(again.buffer);
          ({ counts, lists } = again);
        }
        found.forEach((f, k) => {
          const inWindow = counts[2 * k + 1]!;
          const n = Math.min(inWindow, left(k));
          if (n > 0) into[k]!.set(lists[k]!.subarray(0, n), f.inWindow);
          f.above += counts[2 * k]!;
          f.inWindow += inWindow;
          f.parts.push({ from: ranges[r]![0], to: ranges[r]![1], inWindow });
        });
      }
      return found;
    } finally {
      giveBackSpareBuffers(buffers);
    }
  }

  /**
   * TIES merge pass (tiesMerge and its encoded form): `op` over arrays = [out, base, x1, …] with
   * per-task-vector weights, cuts and quotas in the params; `countOp` first when the quotas are
   * split across several thread ranges and `spans` do not already say how. Returns how many
   * cut-equal elements each vector kept.
   */
  async function tiesRanges(op: string, countOp: string, arrays: readonly ArrayBufferView[], length: number, weights: readonly number[], cuts: readonly number[], quotas: readonly number[], base: Record<string, number>, spans: readonly QuotaSpan[] | undefined): Promise<number[]> {
    const m = arrays.length - 2;
    checkLength(`${op} weights`, weights.length, m);
    checkLength(`${op} cuts`, cuts.length, m);
    checkLength(`${op} quotas`, quotas.length, m);
    const ranges = splitRanges(arrays, length);
    const params: Record<string, number> = { ...base };
    for (let k = 0; k < m; k++) {
      params[`w${k}`] = weights[k]!;
      params[`c${k}`] = cuts[k]!;
    }
    const withQuotas = (q: readonly number[]) => {
      const p = { ...params };
      q.forEach((v, k) => (p[`q${k}`] = v));
      return p;
    };
    const sum = (kept: number[][]) => Array.from({ length: m }, (_, k) => kept.reduce((s, part) => s + part[k]!, 0));
    if (!ranges || !quotas.some((q) => q > 0)) return sum((await runRanges(op, arrays, length, ranges, () => withQuotas(quotas))) as number[][]);
    // Spans on these very ranges that split the quotas exactly (a window pass's, usually): every
    // range's quota is known, so all of them merge at once.
    if (spansSplit(spans, ranges, quotas)) return sum((await runRanges(op, arrays, length, ranges, (r) => withQuotas(spans![r]!.quotas))) as number[][]);
    // Cut-equal elements are kept in index order, so a range's quota is what the ranges before
    // it leave: the first range's is the whole quota (its merge starts at once, no count), a
    // later one's waits for the counts of the ranges before it, each on the next worker over and
    // stopping once it reaches the quota (only min(count, quota) matters; lK is that limit).
    const jobs: Promise<unknown>[] = [];
    const track = (job: Promise<unknown>) => {
      jobs.push(job);
      job.catch(() => undefined); // surfaced by settleAll below
      return job;
    };
    const limits: Record<string, number> = {};
    quotas.forEach((q, k) => (limits[`l${k}`] = q));
    try {
      const counts = ranges.slice(0, -1).map(([from, to], r) => track(pool!.run(r + 1, job(countOp, arrays, from, to, { ...params, ...limits }))));
      const left = [...quotas];
      const merges = [track(pool!.run(0, job(op, arrays, ranges[0]![0], ranges[0]![1], withQuotas(left))))];
      for (let r = 1; r < ranges.length; r++) {
        const before = (await counts[r - 1]!) as number[];
        before.forEach((count, k) => (left[k] = left[k]! - Math.min(count, left[k]!)));
        merges.push(track(pool!.run(r, job(op, arrays, ranges[r]![0], ranges[r]![1], withQuotas(left)))));
      }
      return sum((await settleAll(merges)) as number[][]);
    } finally {
      // A failed count or merge: every other job must finish before the caller reuses the buffers.
      await Promise.allSettled(jobs);
    }
  }

  const elementwise = async (op: string, inputs: Float32Array[], out: Float32Array | undefined, params: Record<string, number> = {}) => {
    const length = inputs[0]!.length;
    for (const [i, x] of inputs.entries()) checkLength(`${op} input ${i}`, x.length, length);
    const target = output(length, out, op);
    await run(op, [target, ...inputs], length, params);
    return target;
  };

  /**
   * An elementwise op over encoded inputs into `outDtype` (weightedSumEncoded, addDifferenceEncoded,
   * trainDifferenceEncoded, consensusEncoded): arrays = [out bytes, input bytes…], params plus
   * each input's dtype code d<k> and the output's od.
   */
  const elementwiseEncoded = async (op: string, inputs: readonly EncodedTensor[], outDtype: DType, out: Uint8Array | undefined, params: Record<string, number>): Promise<Uint8Array> => {
    if (inputs.length === 0) throw new KernelError("KERNEL_NO_INPUTS", `${op} needs at least one input`);
    if (!isFloatDType(outDtype)) throw dtypeNotEncodable(op, outDtype);
    const codes = localCodecs().DTYPE_CODE;
    const all: Record<string, number> = { ...params, od: codes[outDtype]! };
    const arrays: Uint8Array[] = [];
    let length = 0;
    inputs.forEach((input, k) => {
      const [bytes, size] = encodedInput(`${op} input ${k}`, input);
      if (k === 0) length = bytes.byteLength / size;
      checkLength(`${op} input ${k} elements`, bytes.byteLength / size, length);
      all[`d${k}`] = codes[input.dtype]!;
      arrays.push(bytes);
    });
    const outSize = DTYPE_SIZE[outDtype];
    const target = out ?? allocBytes(length * outSize);
    checkLength(`${op} output bytes`, target.byteLength, length * outSize);
    const dst = alignedOutput(target, outSize);
    await run(op, [dst, ...arrays], length, all);
    if (dst !== target) target.set(dst);
    return target;
  };

  return {
    kind: "cpu",
    description: pool ? `cpu (${workers} worker thread${workers === 1 ? "" : "s"})` : "cpu (inline, no worker threads)",
    parallelism: Math.max(1, workers),
    allocF32,
    allocBytes,
    createArena(): KernelArena | undefined {
      if (!pool || !simd || closed) return undefined;
      if (arenaMemory === undefined) {
        try {
          arenaMemory = new SharedKernelArena(pool.size);
        } catch {
          arenaMemory = null; // no shared WebAssembly memory here
        }
      }
      return arenaMemory ? new ArenaLease(arenaMemory) : undefined;
    },

    async decode(bytes, dtype, out) {
      const size = DTYPE_SIZE[dtype];
      if (size === undefined) throw new KernelError("DTYPE_UNKNOWN", `cannot decode unknown dtype ${briefly(dtype)}`);
      if (bytes.byteLength % size !== 0) throw new KernelError("KERNEL_LENGTH_MISMATCH", `decode ${dtype}: ${bytes.byteLength} bytes is not a whole number of ${size}-byte elements`);
      const length = bytes.byteLength / size;
      const target = output(length, out, "decode");
      await run("decode", [aligned(bytes, size), target], length, { dtype: localCodecs().DTYPE_CODE[dtype]! });
      return target;
    },

    async encode(values, dtype, out) {
      if (!(dtype in DTYPE_SIZE)) throw new KernelError("DTYPE_UNKNOWN", `cannot encode unknown dtype ${briefly(dtype)}`);
      if (!isFloatDType(dtype)) throw dtypeNotEncodable("encode", dtype);
      const size = DTYPE_SIZE[dtype];
      const byteLength = values.length * size;
      let target = out;
      if (target === undefined) target = allocBytes(byteLength);
      else checkLength("encode output bytes", target.byteLength, byteLength);
      const dst = alignedOutput(target, size);
      await run("encode", [values, dst], values.length, { dtype: localCodecs().DTYPE_CODE[dtype]! });
      if (dst !== target) target.set(dst);
      return target;
    },

    async weightedSum(inputs, weights, out) {
      if (inputs.length === 0) throw new KernelError("KERNEL_NO_INPUTS", "weightedSum needs at least one input");
      checkLength("weightedSum weights", weights.length, inputs.length);
      const params: Record<string, number> = {};
      weights.forEach((w, k) => (params[`w${k}`] = w));
      return elementwise("weightedSum", [...inputs], out, params);
    },
    async weightedSumEncoded(inputs, weights, outDtype, out) {
      checkLength("weightedSumEncoded weights", weights.length, inputs.length);
      const params: Record<string, number> = {};
      weights.forEach((w, k) => (params[`w${k}`] = w));
      return elementwiseEncoded("weightedSumEncoded", inputs, outDtype, out, params);
    },
    async addDifferenceEncoded(a, b, c, alpha, outDtype, out) {
      return elementwiseEncoded("addDifferenceEncoded", [a, b, c], outDtype, out, { alpha });
    },
    async trainDifferenceEncoded(a, b, c, scale, outDtype, out) {
      return elementwiseEncoded("trainDifferenceEncoded", [a, b, c], outDtype, out, { scale });
    },
    async consensusEncoded(inputs, exponent, outDtype, out) {
      checkConsensusExponent(exponent);
      return elementwiseEncoded("consensusEncoded", inputs, outDtype, out, { exponent });
    },
    scale: (a, s, out) => elementwise("scale", [a], out, { s }),
    add: (a, b, out) => elementwise("add", [a, b], out),
    sub: (a, b, out) => elementwise("sub", [a, b], out),
    lerp: (a, b, t, out) => elementwise("lerp", [a, b], out, { t }),
    abs: (a, out) => elementwise("abs", [a], out),
    sign: (a, out) => elementwise("sign", [a], out),
    clamp: (a, lo, hi, out) => elementwise("clamp", [a], out, { lo, hi }),

    async addLowRankProduct(w, up, down, shape, factor) {
      if (closed) throw new KernelError("KERNEL_CLOSED", "kernel backend used after close()");
      const { rows, rank, cols, rowOffset } = shape;
      if (w.length < (rowOffset + rows) * cols) throw new KernelError("KERNEL_LENGTH_MISMATCH", `addLowRankProduct: w holds ${w.length} values, rows ${rowOffset}..${rowOffset + rows} × ${cols} need ${(rowOffset + rows) * cols}`);
      checkLength("addLowRankProduct up", up.length, rows * rank);
      checkLength("addLowRankProduct down", down.length, rank * cols);
      const params = { rank, cols, factor, rowOffset };
      const arrays = [w, up, down];
      if (!pool || rows * cols < inlineBelow || !arrays.every(isShared)) {
        localOps().addLowRankProduct!(arrays, 0, rows, params);
        return;
      }
      const step = Math.ceil(rows / pool.size);
      const jobs: Promise<unknown>[] = [];
      for (let p = 0, from = 0; from < rows; p++, from += step) jobs.push(pool.run(p, { op: "addLowRankProduct", arrays, from, to: Math.min(rows, from + step), params }));
      await settleAll(jobs);
    },
    async randomizedSvd(a, m, n, rank, options = {}) {
      if (closed) throw new KernelError("KERNEL_CLOSED", "kernel backend used after close()");
      const o = checkSvdArgs(a, m, n, rank, options);
      if (!pool || !isShared(a)) return randomizedSvd(a, m, n, rank, o);
      return (await pool.runOnIdlest({ op: "randomizedSvd", arrays: [a], from: 0, to: 1, params: { m, n, rank, ...o } })) as TruncatedSvd;
    },
    async dot(a, b) {
      checkLength("dot input 1", b.length, a.length);
      const parts = await run("dot", [a, b], a.length);
      return parts.reduce<number>((s, x) => s + (x as number), 0);
    },
    async norm(a) {
      const parts = await run("sumSquares", [a], a.length);
      return Math.sqrt(parts.reduce<number>((s, x) => s + (x as number), 0));
    },

    async taskVectorHistogram(base, x, level, prefix, into) {
      checkLength("taskVectorHistogram input", x.length, base.length);
      return histogram("taskVectorHistogram", [base, x], base.length, { level, prefix }, into);
    },
    async taskVectorHistogramEncoded(base, x, level, prefix, into) {
      const { arrays, length, codes } = taskVectorInputs("taskVectorHistogramEncoded", base, x);
      return histogram("taskVectorHistogramEncoded", arrays, length, { level, prefix, ...codes }, into);
    },
    async taskVectorWindow(base, x, lo, hi, into) {
      checkLength("taskVectorWindow input", x.length, base.length);
      return (await windows("taskVectorWindow", [base, x], base.length, { lo, hi }, [into]))[0]!;
    },
    async taskVectorWindowEncoded(base, x, lo, hi, into) {
      const { arrays, length, codes } = taskVectorInputs("taskVectorWindowEncoded", base, x);
      return (await windows("taskVectorWindowEncoded", arrays, length, { lo, hi, ...codes }, [into]))[0]!;
    },
    async taskVectorWindowsEncoded(base, xs, windowsOf, into) {
      checkLength("taskVectorWindowsEncoded windows", windowsOf.length, xs.length);
      checkLength("taskVectorWindowsEncoded lists", into.length, xs.length);
      if (xs.length === 0) return [];
      const codes = localCodecs().DTYPE_CODE;
      const [b, sb] = encodedInput("taskVectorWindowsEncoded base", base);
      const length = b.byteLength / sb;
      const params: Record<string, number> = { db: codes[base.dtype]! };
      const arrays = [b];
      xs.forEach((x, k) => {
        const [v, sx] = encodedInput(`taskVectorWindowsEncoded input ${k}`, x);
        checkLength(`taskVectorWindowsEncoded input ${k} elements`, v.byteLength / sx, length);
        arrays.push(v);
        params[`d${k}`] = codes[x.dtype]!;
        params[`lo${k}`] = windowsOf[k]!.lo;
        params[`hi${k}`] = windowsOf[k]!.hi;
      });
      return windows("taskVectorWindowsEncoded", arrays, length, params, into, windowsOf.map((w) => w.expected));
    },
    async tiesMerge(base, models, weights, cuts, quotas, lambda, out, spans) {
      const length = base.length;
      for (const [i, x] of models.entries()) checkLength(`tiesMerge input ${i}`, x.length, length);
      checkLength("tiesMerge output", out.length, length);
      return tiesRanges("tiesMerge", "countAtMagnitude", [out, base, ...models], length, weights, cuts, quotas, { lambda }, spans);
    },
    async tiesMergeEncoded(base, models, weights, cuts, quotas, lambda, outDtype, out, spans) {
      if (!isFloatDType(outDtype)) throw dtypeNotEncodable("tiesMergeEncoded", outDtype);
      const codes = localCodecs().DTYPE_CODE;
      const [b, sb] = encodedInput("tiesMergeEncoded base", base);
      const length = b.byteLength / sb;
      const params: Record<string, number> = { lambda, db: codes[base.dtype]!, od: codes[outDtype]! };
      const xs = models.map((x, k) => {
        const [v, sx] = encodedInput(`tiesMergeEncoded input ${k}`, x);
        checkLength(`tiesMergeEncoded input ${k} elements`, v.byteLength / sx, length);
        params[`d${k}`] = codes[x.dtype]!;
        return v;
      });
      const outSize = DTYPE_SIZE[outDtype];
      checkLength("tiesMergeEncoded output bytes", out.byteLength, length * outSize);
      const dst = alignedOutput(out, outSize);
      const kept = await tiesRanges("tiesMergeEncoded", "countAtMagnitudeEncoded", [dst, b, ...xs], length, weights, cuts, quotas, params, spans);
      if (dst !== out) out.set(dst);
      return kept;
    },
    async dareDrop(tasks, dropRate, offset) {
      checkDareDraws(tasks.map(({ seed }) => seed), offset);
      const common = dareDrawParams(dropRate, offset);
      // Every draw stands alone, so each task vector's drop splits across the threads.
      await settleAll(
        tasks.map(({ x, base, seed }, k) => {
          checkLength(`dareDrop input ${k}`, x.length, base.length);
          return run("dareDrop", [x, base], x.length, { ...common, seed });
        }),
      );
    },
    async dareMergeEncoded(base, models, seeds, offset, dropRate, weights, lambda, electSign, outDtype, out) {
      if (closed) throw new KernelError("KERNEL_CLOSED", "kernel backend used after close()");
      if (!isFloatDType(outDtype)) throw dtypeNotEncodable("dareMergeEncoded", outDtype);
      checkLength("dareMergeEncoded weights", weights.length, models.length);
      checkLength("dareMergeEncoded seeds", seeds.length, models.length);
      checkDareDraws(seeds, offset);
      const codes = localCodecs().DTYPE_CODE;
      const [b, sb] = encodedInput("dareMergeEncoded base", base);
      const length = b.byteLength / sb;
      const params: Record<string, number> = { ...combineParams(weights, lambda, electSign), ...dareDrawParams(dropRate, offset), db: codes[base.dtype]!, od: codes[outDtype]! };
      const xs = models.map((x, k) => {
        const [v, sx] = encodedInput(`dareMergeEncoded input ${k}`, x);
        checkLength(`dareMergeEncoded input ${k} elements`, v.byteLength / sx, length);
        params[`d${k}`] = codes[x.dtype]!;
        params[`s${k}`] = seeds[k]!;
        return v;
      });
      const outSize = DTYPE_SIZE[outDtype];
      checkLength("dareMergeEncoded output bytes", out.byteLength, length * outSize);
      const dst = alignedOutput(out, outSize);
      // Each thread draws its range's keep masks itself (every draw stands alone).
      await run("dareMergeEncoded", [dst, b, ...xs], length, params);
      if (dst !== out) out.set(dst);
      return out;
    },
    async combineTaskVectors(base, deltas, weights, lambda, electSign, out) {
      checkLength("combineTaskVectors weights", weights.length, deltas.length);
      const params = combineParams(weights, lambda, electSign);
      for (const [i, d] of deltas.entries()) checkLength(`combineTaskVectors delta ${i}`, d.length, base.length);
      checkLength("combineTaskVectors output", out.length, base.length);
      await run("combineTaskVectors", [out, base, ...deltas], base.length, params);
      return out;
    },
    async consensus(inputs, exponent, out) {
      if (inputs.length === 0) throw new KernelError("KERNEL_NO_INPUTS", "consensus needs at least one input");
      checkConsensusExponent(exponent);
      return elementwise("consensus", [...inputs], out, { exponent });
    },
    async dotAndNormsEncoded(a, b) {
      const codes = localCodecs().DTYPE_CODE;
      const [sa, sb] = [a, b].map(({ dtype }) => {
        const size = DTYPE_SIZE[dtype];
        if (size === undefined) throw new KernelError("DTYPE_UNKNOWN", `cannot decode unknown dtype ${briefly(dtype)}`);
        return size;
      }) as [number, number];
      const length = a.bytes.byteLength / sa;
      checkLength("dotAndNormsEncoded input 1 elements", b.bytes.byteLength / sb, length);
      const parts = (await run("dotAndNormsEncoded", [aligned(a.bytes, sa), aligned(b.bytes, sb)], length, { d0: codes[a.dtype]!, d1: codes[b.dtype]! })) as number[][];
      return [0, 1, 2].map((j) => parts.reduce((s, p) => s + p[j]!, 0)) as [number, number, number];
    },
    async dotAndNorms(a, b) {
      checkLength("dotAndNorms input 1", b.length, a.length);
      const parts = (await run("dotAndNorms", [a, b], a.length)) as number[][];
      return [0, 1, 2].map((j) => parts.reduce((s, p) => s + p[j]!, 0)) as [number, number, number];
    },

    async topKThreshold(a, k) {
      if (k <= 0) return Infinity;
      if (k >= a.length) return 0;
      const sum = (parts: unknown[]) => {
        const total = new Float64Array(65536);
        for (const h of parts as Uint32Array[]) for (let i = 0; i < 65536; i++) total[i]! += h[i]!;
        return total;
      };
      // Find the 16-bit prefix of the k-th largest |a|, then its low 16 bits.
      const high = sum(await run("magnitudeHistogram", [a], a.length, { level: 0 }));
      let remaining = k;
      let prefix = -1;
      for (let b = 65535; b >= 0; b--) {
        if (high[b]! >= remaining) {
          prefix = b;
          break;
        }
        remaining -= high[b]!;
      }
      if (prefix < 0) return 0; // fewer than k non-NaN elements
      const low = sum(await run("magnitudeHistogram", [a], a.length, { level: 1, prefix }));
      for (let b = 65535; b >= 0; b--) {
        if (low[b]! >= remaining) return localCodecs().f32FromBits(((prefix << 16) | b) >>> 0);
        remaining -= low[b]!;
      }
      return 0;
    },

    async close() {
      closed = true;
      await pool?.close();
    },
  };
}

