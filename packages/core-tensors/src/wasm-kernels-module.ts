import type { KernelOps } from "./kernel-ops-module.js";
import type { SvdProducts } from "./randomized-svd-module.js";

/**
 * Where an arena instance of the module lives (kernel-arena): the arena's shared memory, and this
 * thread's scratch in it, [scratchAt, scratchAt + scratchBytes).
 */
export interface WasmArenaScratch {
  readonly memory: object;
  readonly scratchAt: number;
  readonly scratchBytes: number;
}

/**
 * The hot kernels on WebAssembly SIMD (assembly/simd-kernels.ts): F16/BF16/F8 decode and encode,
 * the F32 weighted sum of three or more inputs, the all-F16 fused weighted sum, TIES's magnitude
 * histogram, window lists, the cut in them and its three-model merge pass (merge-engine's ties),
 * DARE's keep masks and its three-model drop and combine (dare), slerp's statistics of 16-bit
 * inputs, and consensus (any count of inputs, any dtype with a decoder here). Every other case,
 * and every op not listed here, runs the JavaScript kernel, which stays the reference (results
 * are bit-identical).
 * Returns undefined where WebAssembly or its SIMD extension is missing: callers keep `jsOps`.
 *
 * Serialised with `toString()` into the worker source like kernelOpsModule, so it references
 * only globals and its arguments. Without `arena` the module has its own linear memory, and
 * ranges of the (shared) arrays are copied through it in blocks that stay in cache. With `arena`
 * (`wasmBase64` then the shared-memory build) the module runs on a kernel arena's memory: an
 * array that lives there (its address in the ops' `at`, −1 for one that does not) is read and
 * written in place, which saves the copies (13–20% of a kernel thread's time); the rest is
 * copied through this thread's scratch as before, and an op that needs more scratch than the
 * arena gave runs `jsOps` (the caller passes the copying WebAssembly ops there).
 */
export function wasmKernelsModule(jsOps: KernelOps, wasmBase64: string, arena?: WasmArenaScratch): KernelOps | undefined {
  type Arrays = readonly ArrayBufferView[];
  type At = readonly number[] | undefined;
  type Params = Record<string, number>;
  interface Exports {
    memory: { readonly buffer: ArrayBuffer; grow(pages: number): number };
    scratchBase(): number;
    decodeF16(src: number, dst: number, n: number): void;
    decodeBF16(src: number, dst: number, n: number): void;
    encodeF16(src: number, dst: number, n: number): void;
    encodeBF16(src: number, dst: number, n: number): void;
    decodeE4M3(src: number, dst: number, n: number): void;
    decodeE5M2(src: number, dst: number, n: number): void;
    encodeE4M3(src: number, dst: number, n: number): void;
    encodeE5M2(src: number, dst: number, n: number): void;
    weightedSum16(out: number, inputs: number, codes: number, weights: number, n: number, len: number, outCode: number, scratch: number): void;
    weightedSum16Unrolled(out: number, inputs: number, codes: number, weights: number, n: number, len: number, outCode: number, scratch: number): void;
    weightedSumF32(out: number, inputs: number, weights: number, n: number, len: number): void;
    tiesMerge2(out: number, base: number, x1: number, x2: number, len: number, p: number): void;
    tiesMerge16(out: number, base: number, x1: number, x2: number, len: number, p: number, codeBase: number, code1: number, code2: number, outCode: number): void;
    tiesHistogram(hist: number, base: number, x: number, len: number, level: number, prefix: number, range: number): void;
    tiesCount(base: number, x: number, len: number, cut: number): number;
    tiesHistogram16(hist: number, base: number, x: number, len: number, level: number, prefix: number, range: number, codeBase: number, codeX: number): void;
    tiesCount16(base: number, x: number, len: number, cut: number, codeBase: number, codeX: number): number;
    tiesWindow(out: number, base: number, x: number, len: number, lo: number, hi: number, result: number): void;
    tiesWindow16(out: number, base: number, x: number, len: number, lo: number, hi: number, result: number, codeBase: number, codeX: number): void;
    dotAndNorms16(a: number, b: number, len: number, codeA: number, codeB: number, sums: number): void;
    tiesWindow2x16(out1: number, out2: number, base: number, x1: number, x2: number, len: number, w: number, result: number, codeBase: number, code1: number, code2: number): void;
    dotAndNormsF32(a: number, b: number, len: number, sums: number): void;
    dareMerge2(out: number, base: number, x1: number, x2: number, len: number, p: number): void;
    dareMerge16(out: number, base: number, x1: number, x2: number, len: number, p: number, codeBase: number, code1: number, code2: number, outCode: number): void;
    dareMergeN(out: number, inputs: number, m: number, len: number, p: number, lanesAt: number): void;
    tiesMergeN(out: number, inputs: number, m: number, len: number, p: number, lanesAt: number): void;
    addLowRankProduct(w: number, up: number, down: number, rows: number, rank: number, cols: number, factor: number): void;
    svdTimesRight(y: number, a: number, x: number, m: number, n: number, l: number): void;
    svdTimesLeftTransposed(z: number, a: number, q: number, m: number, n: number, l: number): void;
    consensusF32(out: number, inputs: number, n: number, len: number, exponent: number, scratch: number): void;
    addDifference16(out: number, a: number, b: number, c: number, len: number, alpha: number, codeA: number, codeB: number, codeC: number, outCode: number): void;
    trainDifference16(out: number, a: number, b: number, c: number, len: number, scale: number, codeA: number, codeB: number, codeC: number, outCode: number): void;
    addDifferenceF32(out: number, a: number, b: number, c: number, len: number, alpha: number): void;
    trainDifferenceF32(out: number, a: number, b: number, c: number, len: number, scale: number): void;
    cutInListBins(values: number, n: number, lo: number, shift: number, last: number, bin: number, hist: number, range: number): void;
    cutInListRank(hist: number, range: number, need: number, above: number): number;
    countEqual(values: number, n: number, value: number): number;
  }
  // The parts of the WebAssembly API used here (Node's types do not declare them all).
  interface WasmApi {
    validate(bytes: Uint8Array): boolean;
    Module: new (bytes: Uint8Array) => object;
    Instance: new (module: object, imports: object) => { exports: unknown };
  }
  const api = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;
  if (api === undefined) return undefined;
  const binary = Uint8Array.from(atob(wasmBase64), (c) => c.charCodeAt(0));
  // validate() is false when the engine lacks 128-bit SIMD.
  if (!api.validate(binary)) return undefined;
  const wasm = new api.Instance(new api.Module(binary), arena ? { env: { memory: arena.memory } } : {}).exports as Exports;
  const memory = wasm.memory;
  // The arena's scratch must start past the module's static data, on 16 bytes.
  if (arena && (arena.scratchAt < wasm.scratchBase() || arena.scratchAt % 16 !== 0)) return undefined;
  // TIES's histogram bins come first, all zero between calls (each call adds the bins it touched
  // to the caller's and clears them: a few thousand of the 65536, not all), then the touched
  // range (two u32s); every op's scratch starts after them.
  const histAt = arena ? arena.scratchAt : wasm.scratchBase();
  const rangeAt = histAt + 4 * 65536;
  const base = rangeAt + 16;
  // Elements per block: 8 inputs of F32 plus the output fit in ~300 KB of scratch.
  const BLOCK = 8192;
  const pad8 = (n: number) => (n + 7) & ~7;
  // The merge kernels' (TIES, DARE) parameter block at `base` (their F64s and scratch), before the data.
  const PARAMS = 256;

  // Thrown by heapFor when an op needs more than the arena's scratch; the op then runs jsOps.
  const noRoom = new Error("arena scratch too small");
  /** The module's memory as bytes, grown to hold `scratchBytes` past the scratch base (an arena's is fixed). */
  const heapFor = (scratchBytes: number): Uint8Array => {
    const need = base + scratchBytes;
    if (arena) {
      if (need > arena.scratchAt + arena.scratchBytes) throw noRoom;
      return new Uint8Array(memory.buffer);
    }
    const have = memory.buffer.byteLength;
    if (have < need) memory.grow(Math.ceil((need - have) / 65536));
    return new Uint8Array(memory.buffer);
  };
  /**
   * The address of elements [b, b + len) (`size` bytes each) of `view`: in place when the array
   * lives in this memory at `address` (kernels then read up to 7 elements past a block, which
   * the arena pads), else copied to `stagingAt`.
   */
  const inAt = (heap: Uint8Array, view: ArrayBufferView, address: number, size: number, b: number, len: number, stagingAt: number): number => {
    if (address >= 0) return address + size * b;
    heap.set(bytesOf(view, size * b, size * (b + len)), stagingAt);
    return stagingAt;
  };
  /**
   * Where a kernel writes elements [b, b + len) of an array at `address`: in place when it lives
   * here and the kernel's steps of 8 end at len (a ragged tail would write past the range, maybe
   * into another thread's), else at `stagingAt`, which copyOut copies to the array.
   */
  const outputAt = (address: number, size: number, b: number, len: number, stagingAt: number): number => (address >= 0 && (len & 7) === 0 ? address + size * b : stagingAt);
  const copyOut = (heap: Uint8Array, view: ArrayBufferView, written: number, size: number, b: number, len: number, stagingAt: number): void => {
    if (written === stagingAt) bytesOf(view, size * b, size * (b + len)).set(heap.subarray(stagingAt, stagingAt + size * len));
  };
  /** arrays[k]'s address in this memory, −1 where it is elsewhere (or this is not an arena instance). */
  const addressOf = (at: At, k: number): number => (arena ? (at?.[k] ?? -1) : -1);
  const bytesOf = (v: ArrayBufferView, from: number, to: number) => new Uint8Array(v.buffer, v.byteOffset + from, to - from);

  /**
   * Runs a one-input kernel over elements [from, to) in blocks: `inSize`-byte elements of `src`
   * (arrays[0]) in, `kernel(srcAt, dstAt, count)`, `outSize`-byte results out to `dst`
   * (arrays[1]). Decode and encode of every dtype differ only in the kernel and the sizes.
   */
  const throughHeap = (kernel: (src: number, dst: number, n: number) => void, arrays: Arrays, at: At, inSize: number, outSize: number, from: number, to: number): void => {
    const [src, dst] = arrays as [ArrayBufferView, ArrayBufferView];
    const srcAt = base;
    const dstAt = base + inSize * BLOCK;
    const heap = heapFor((inSize + outSize) * BLOCK);
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      const d = outputAt(addressOf(at, 1), outSize, b, len, dstAt);
      kernel(inAt(heap, src, addressOf(at, 0), inSize, b, len, srcAt), d, pad8(len));
      copyOut(heap, dst, d, outSize, b, len, dstAt);
    }
  };

  // By dtype code (F16 2, BF16 3, F8_E4M3 4, F8_E5M2 5): the kernels and the encoded element size.
  const decoders: Record<number, (src: number, dst: number, n: number) => void> = { 2: wasm.decodeF16, 3: wasm.decodeBF16, 4: wasm.decodeE4M3, 5: wasm.decodeE5M2 };
  const encoders: Record<number, (src: number, dst: number, n: number) => void> = { 2: wasm.encodeF16, 3: wasm.encodeBF16, 4: wasm.encodeE4M3, 5: wasm.encodeE5M2 };
  const encodedSize = (code: number) => (code <= 3 ? 2 : 1);

  const decode = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const code = params.dtype!;
    const kernel = decoders[code];
    if (kernel === undefined) return jsOps.decode!(arrays, from, to, params);
    throughHeap(kernel, arrays, at, encodedSize(code), 4, from, to);
    return undefined;
  };

  const encode = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const code = params.dtype!;
    const kernel = encoders[code];
    if (kernel === undefined) return jsOps.encode!(arrays, from, to, params);
    throughHeap(kernel, arrays, at, 4, encodedSize(code), from, to);
    return undefined;
  };

  /** arrays = [out, in0, …], all F32. */
  const weightedSumF32 = (arrays: Arrays, from: number, to: number, params: Params, at: At): void => {
    const n = arrays.length - 1;
    const tableBytes = (n * 12 + 15) & ~15;
    const heap = heapFor(tableBytes + (n + 1) * 4 * BLOCK);
    const pointers = new Uint32Array(memory.buffer, base, n);
    const weights = new Float64Array(memory.buffer, base + ((n * 4 + 7) & ~7), n);
    const dataAt = base + tableBytes;
    for (let k = 0; k < n; k++) weights[k] = params[`w${k}`]!;
    const stagingAt = dataAt + n * 4 * BLOCK;
    const out = arrays[0]!;
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      for (let k = 0; k < n; k++) pointers[k] = inAt(heap, arrays[k + 1]!, addressOf(at, k + 1), 4, b, len, dataAt + k * 4 * BLOCK);
      const o = outputAt(addressOf(at, 0), 4, b, len, stagingAt);
      wasm.weightedSumF32(o, base, base + ((n * 4 + 7) & ~7), n, pad8(len));
      copyOut(heap, out, o, 4, b, len, stagingAt);
    }
  };

  /** arrays = [out, in0, …]: 16-bit inputs (F16/BF16, `params.d<k>`) into F16 or BF16 (`params.od`). */
  const weightedSum16 = (arrays: Arrays, from: number, to: number, params: Params, at: At): void => {
    const n = arrays.length - 1;
    // Table: pointers (u32), codes (u32), weights (F64), per-input scratch (32 bytes each).
    const codesAt = base + 4 * n;
    const weightsAt = base + ((8 * n + 7) & ~7);
    const scratchAt = (weightsAt + 8 * n + 15) & ~15;
    const dataAt = scratchAt + 32 * n;
    const heap = heapFor(dataAt - base + (n + 1) * 2 * BLOCK);
    const pointers = new Uint32Array(memory.buffer, base, n);
    const codes = new Uint32Array(memory.buffer, codesAt, n);
    const weights = new Float64Array(memory.buffer, weightsAt, n);
    for (let k = 0; k < n; k++) {
      codes[k] = params[`d${k}`]!;
      weights[k] = params[`w${k}`]!;
    }
    const stagingAt = dataAt + n * 2 * BLOCK;
    const out = arrays[0]!;
    // Two or more inputs of one dtype: the unrolled kernel (same bytes, faster).
    const kernel = n >= 2 && codes.every((c) => c === codes[0]) ? wasm.weightedSum16Unrolled : wasm.weightedSum16;
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      for (let k = 0; k < n; k++) pointers[k] = inAt(heap, arrays[k + 1]!, addressOf(at, k + 1), 2, b, len, dataAt + k * 2 * BLOCK);
      const o = outputAt(addressOf(at, 0), 2, b, len, stagingAt);
      kernel(o, base, codesAt, weightsAt, n, pad8(len), params.od!, scratchAt);
      copyOut(heap, out, o, 2, b, len, stagingAt);
    }
  };

  /**
   * Runs `bin(start, len)` over [from, to) in blocks into the module's bins, then adds the bins
   * it touched to `into` and clears them. Returns the touched range [lo, hi] (lo > hi: none),
   * which is all the caller needs to read of `into` when it was zero before.
   */
  const histogramBlocks = (into: Uint32Array, from: number, to: number, bin: (start: number, len: number) => void): [number, number] => {
    const range = new Uint32Array(memory.buffer, rangeAt, 2);
    range[0] = 0xffff;
    range[1] = 0;
    for (let b = from; b < to; b += BLOCK) bin(b, Math.min(to, b + BLOCK) - b);
    // Views again: the memory may have grown (a grow detaches the old views).
    const [lo, hi] = new Uint32Array(memory.buffer, rangeAt, 2) as unknown as [number, number];
    const bins = new Uint32Array(memory.buffer, histAt, 65536);
    for (let i = lo; i <= hi; i++) into[i]! += bins[i]!;
    if (lo <= hi) bins.fill(0, lo, hi + 1);
    return [lo, hi];
  };

  // The TIES ops on encoded inputs (kernel-ops-module's *Encoded): each block of each input is
  // taken at its encoded size (inAt) and decoded inside the module (F32 taken as is), then the F32
  // kernels run on the module's memory. Dtypes without a decoder here run the JavaScript op.
  const stageable = (code: number | undefined) => code === 1 || (code !== undefined && decoders[code] !== undefined);
  /**
   * The address of elements [b, b + len) of `src` (dtype `code`, at `address` or elsewhere) as
   * F32: an F32 input's own (inAt, staged at `f32At`), else decoded to `f32At` from its codes
   * (inAt, staged at `codesAt`).
   */
  const stage = (heap: Uint8Array, src: ArrayBufferView, address: number, code: number, b: number, len: number, codesAt: number, f32At: number): number => {
    if (code === 1) return inAt(heap, src, address, 4, b, len, f32At);
    decoders[code]!(inAt(heap, src, address, encodedSize(code), b, len, codesAt), f32At, pad8(len));
    return f32At;
  };

  const is16 = (code: number | undefined) => code === 2 || code === 3;

  /**
   * The staged path of the element-wise ops on encoded inputs, arrays = [outBytes, in0, …]
   * (params.d<k>, od; stagedDtypes says whether they can take it): per block, each input copied
   * (F32) or decoded as F32 into the module, `kernel(inputsAt, resultAt, len, b, realLen)` writes
   * the F32 result of the block's elements [b, b + realLen) (`len`, realLen rounded up to a
   * multiple of 8, may be written), which is encoded into od there, or written in place when od is
   * F32. The first `tableBytes` past `base` are the kernel's (pointer tables, scratch).
   */
  const stagedBlocks = (arrays: Arrays, from: number, to: number, params: Params, at: At, tableBytes: number, kernel: (inputsAt: readonly number[], resultAt: number, len: number, b: number, realLen: number) => void): void => {
    const n = arrays.length - 1;
    const od = params.od!;
    const codesAt = base + ((tableBytes + 15) & ~15);
    const dataAt = codesAt + 4 * BLOCK;
    const f32At = dataAt + n * 4 * BLOCK;
    const heap = heapFor(f32At - base + 4 * BLOCK);
    const outSize = od === 1 ? 4 : encodedSize(od);
    const out = arrays[0]!;
    const inputsAt = new Array<number>(n).fill(0);
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      for (let k = 0; k < n; k++) inputsAt[k] = stage(heap, arrays[k + 1]!, addressOf(at, k + 1), params[`d${k}`]!, b, len, codesAt, dataAt + k * 4 * BLOCK);
      // F32 out straight to its place; encoded, the F32 result is encoded there from f32At.
      const resultAt = od === 1 ? f32At : codesAt;
      const o = outputAt(addressOf(at, 0), outSize, b, len, resultAt);
      kernel(inputsAt, od === 1 ? o : f32At, pad8(len), b, len);
      if (od !== 1) encoders[od]!(f32At, o, pad8(len));
      copyOut(heap, out, o, outSize, b, len, resultAt);
    }
  };
  /** Whether `n` inputs of dtypes params.d<k> into params.od can take stagedBlocks. */
  const stagedDtypes = (n: number, params: Params): boolean => {
    let ok = n >= 1 && (params.od === 1 || encoders[params.od!] !== undefined);
    for (let k = 0; k < n && ok; k++) ok = stageable(params[`d${k}`]);
    return ok;
  };

  /**
   * weightedSumEncoded of any mix of F32, F16, BF16 and F8 inputs into F32 or an encoded dtype
   * (the fused 16-bit path aside): stagedBlocks with weightedSumF32 (weightedSum's F64 order),
   * the bytes of decode + weightedSum + encode, as the JavaScript kernel gives them.
   */
  const weightedSumStaged = (arrays: Arrays, from: number, to: number, params: Params, at: At): void => {
    const n = arrays.length - 1;
    // Table: pointers (u32), then weights (F64).
    const weightsAt = base + ((4 * n + 7) & ~7);
    stagedBlocks(arrays, from, to, params, at, weightsAt - base + 8 * n, (inputsAt, resultAt, len) => {
      new Uint32Array(memory.buffer, base, n).set(inputsAt);
      const weights = new Float64Array(memory.buffer, weightsAt, n);
      for (let k = 0; k < n; k++) weights[k] = params[`w${k}`]!;
      wasm.weightedSumF32(resultAt, base, weightsAt, n, len);
    });
  };

  // The TIES statistics ops' scratch: a block of the base and of the task vector (as F32 or codes)
  // and the codes being decoded, then what the op itself needs (TASK_VECTOR_SCRATCH past `base`).
  const TASK_VECTOR_SCRATCH = 12 * BLOCK;
  /**
   * Block [b, b + len) of the base (arrays[0], dtype params.db) and task vector (arrays[1], dx):
   * two 16-bit dtypes go to `fused` as codes (decoded in registers by the *16 kernels), others to
   * `staged` as F32 (decoded here).
   */
  const taskVectorBlock = (heap: Uint8Array, arrays: Arrays, at: At, params: Params, b: number, len: number, fused: (baseCodes: number, xCodes: number) => void, staged: (baseF32: number, xF32: number) => void): void => {
    const { db, dx } = params;
    const xAt = base + 4 * BLOCK;
    const codesAt = xAt + 4 * BLOCK;
    if (is16(db) && is16(dx)) {
      const baseCodes = inAt(heap, arrays[0]!, addressOf(at, 0), 2, b, len, base);
      fused(baseCodes, inAt(heap, arrays[1]!, addressOf(at, 1), 2, b, len, xAt));
      return;
    }
    const baseF32 = stage(heap, arrays[0]!, addressOf(at, 0), db!, b, len, codesAt, base);
    staged(baseF32, stage(heap, arrays[1]!, addressOf(at, 1), dx!, b, len, codesAt, xAt));
  };

  /** arrays = [baseBytes, xBytes, hist], params.db/dx (see taskVectorHistogramEncoded); returns the bins touched. */
  const taskVectorHistogramEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    if (!stageable(params.db) || !stageable(params.dx)) return jsOps.taskVectorHistogramEncoded!(arrays, from, to, params);
    const heap = heapFor(TASK_VECTOR_SCRATCH);
    const [level, prefix, db, dx] = [params.level!, params.prefix!, params.db!, params.dx!];
    const fused = (len: number) => (baseCodes: number, xCodes: number) => wasm.tiesHistogram16(histAt, baseCodes, xCodes, len, level, prefix, rangeAt, db, dx);
    const staged = (len: number) => (baseF32: number, xF32: number) => wasm.tiesHistogram(histAt, baseF32, xF32, len, level, prefix, rangeAt);
    return histogramBlocks(arrays[2] as Uint32Array, from, to, (b, len) => taskVectorBlock(heap, arrays, at, params, b, len, fused(len), staged(len)));
  };

  /** arrays = [baseBytes, xBytes, into], params.db/dx, lo, hi (see taskVectorWindowEncoded); returns [above, in the window]. */
  const taskVectorWindowEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    if (!stageable(params.db) || !stageable(params.dx)) return jsOps.taskVectorWindowEncoded!(arrays, from, to, params);
    // The block's magnitudes in the window (room for a whole block and the kernel's one spare
    // store), then the two counts.
    const windowAt = base + TASK_VECTOR_SCRATCH;
    const resultAt = windowAt + 4 * (BLOCK + 8);
    const heap = heapFor(resultAt + 16 - base);
    const into = arrays[2] as Uint32Array;
    const [db, dx] = [params.db!, params.dx!];
    const lo = params.lo! >>> 0;
    const hi = params.hi! >>> 0;
    let above = 0;
    let inside = 0;
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      const fused = (baseCodes: number, xCodes: number) => wasm.tiesWindow16(windowAt, baseCodes, xCodes, len, lo, hi, resultAt, db, dx);
      taskVectorBlock(heap, arrays, at, params, b, len, fused, (baseF32, xF32) => wasm.tiesWindow(windowAt, baseF32, xF32, len, lo, hi, resultAt));
      // Views again: the memory may have grown.
      const [a, w] = new Int32Array(memory.buffer, resultAt, 2) as unknown as [number, number];
      const room = Math.min(w, into.length - inside);
      if (room > 0) into.set(new Uint32Array(memory.buffer, windowAt, room), inside);
      above += a;
      inside += w;
    }
    return [above, inside];
  };

  /**
   * arrays = [baseBytes, x1Bytes, …, xmBytes, into1, …, intom], params.db, dK, loK, hiK (see
   * taskVectorWindowsEncoded): consecutive task vectors on 16-bit codes two at a time in one
   * pass over the base (windowsOfTwo), others one taskVectorWindowEncoded each.
   */
  const taskVectorWindowsEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const m = (arrays.length - 1) / 2;
    const counts: number[] = [];
    for (let k = 0; k < m; ) {
      const ks = k + 1 < m && is16(params.db) && is16(params[`d${k}`]) && is16(params[`d${k + 1}`]) ? [k, k + 1] : [k];
      const part: Params = { db: params.db! };
      ks.forEach((j, i) => {
        part[`d${i}`] = params[`d${j}`]!;
        part[`lo${i}`] = params[`lo${j}`]!;
        part[`hi${i}`] = params[`hi${j}`]!;
      });
      const partArrays = [arrays[0]!, ...ks.map((j) => arrays[j + 1]!), ...ks.map((j) => arrays[m + 1 + j]!)];
      const partAt = at && [at[0]!, ...ks.map((j) => at[j + 1]!), ...ks.map((j) => at[m + 1 + j]!)];
      const found = ks.length === 2 ? windowsOfTwo(partArrays, from, to, part, partAt) : taskVectorWindowEncoded(partArrays, from, to, { db: part.db!, dx: part.d0!, lo: part.lo0!, hi: part.hi0! }, partAt);
      counts.push(...(found as number[]));
      k += ks.length;
    }
    return counts;
  };

  /**
   * Two task vectors' windows on 16-bit codes in one pass over the base (tiesWindow2x16), arrays
   * = [baseBytes, x1Bytes, x2Bytes, into1, into2], params.db, d0, d1, lo0, hi0, lo1, hi1: the
   * counts [above1, listed1, above2, listed2].
   */
  const windowsOfTwo = (arrays: Arrays, from: number, to: number, params: Params, at?: At): number[] => {
    // The three blocks of codes, each task vector's listed magnitudes, the windows, the counts.
    const [x1At, x2At] = [base + 2 * BLOCK, base + 4 * BLOCK];
    const list1At = base + 6 * BLOCK;
    const list2At = list1At + 4 * (BLOCK + 8);
    const windowsAt = list2At + 4 * (BLOCK + 8);
    // The windows' 32 bytes, then 64 for the kernel's lanes of them.
    const resultAt = windowsAt + 96;
    const heap = heapFor(resultAt + 16 - base);
    const [db, d0, d1] = [params.db!, params.d0!, params.d1!];
    const bounds = [0, 1].map((k) => [params[`lo${k}`]! >>> 0, params[`hi${k}`]! >>> 0] as const);
    // As tiesWindow16 takes them: below the window (signed) and its top, then as given.
    new Int32Array(memory.buffer, windowsAt, 4).set(bounds.flatMap(([lo, hi]) => [lo > 0x7fffffff ? 0x7fffffff : lo - 1, Math.min(hi, 0x7fffffff)]));
    new Uint32Array(memory.buffer, windowsAt + 16, 4).set(bounds.flat());
    const into = [arrays[3], arrays[4]] as Uint32Array[];
    const counts = [0, 0, 0, 0];
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      const baseCodes = inAt(heap, arrays[0]!, addressOf(at, 0), 2, b, len, base);
      const x1 = inAt(heap, arrays[1]!, addressOf(at, 1), 2, b, len, x1At);
      wasm.tiesWindow2x16(list1At, list2At, baseCodes, x1, inAt(heap, arrays[2]!, addressOf(at, 2), 2, b, len, x2At), len, windowsAt, resultAt, db, d0, d1);
      // Views again: the memory may have grown.
      const found = new Int32Array(memory.buffer, resultAt, 4);
      [list1At, list2At].forEach((listAt, k) => {
        const listed = found[2 * k + 1]!;
        const room = Math.min(listed, into[k]!.length - counts[2 * k + 1]!);
        if (room > 0) into[k]!.set(new Uint32Array(memory.buffer, listAt, room), counts[2 * k + 1]!);
        counts[2 * k]! += found[2 * k]!;
        counts[2 * k + 1]! += listed;
      });
    }
    return counts;
  };

  /** arrays = [outBytes (unused), baseBytes, x1Bytes, …], params.db, dK, cK. */
  const countAtMagnitudeEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const m = arrays.length - 2;
    const db = params.db!;
    let ok = stageable(db);
    for (let k = 0; k < m && ok; k++) ok = stageable(params[`d${k}`]);
    if (!ok) return jsOps.countAtMagnitudeEncoded!(arrays, from, to, params);
    // F32 values of the base and a task vector, and the codes each is read from.
    const [baseAt, xAt, baseCodesAt, xCodesAt] = [0, 1, 2, 3].map((k) => base + k * 4 * BLOCK) as [number, number, number, number];
    const heap = heapFor(16 * BLOCK);
    const counts = new Array<number>(m).fill(0);
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      // The base's codes (for 16-bit task vectors) and F32 values (for the others), each taken
      // once per block (−1: not yet).
      let baseCodes = -1;
      let baseF32 = -1;
      for (let k = 0; k < m; k++) {
        const cut = params[`c${k}`]!;
        if (!(cut >= 0) || counts[k]! >= (params[`l${k}`] ?? Infinity)) continue;
        const dx = params[`d${k}`]!;
        if (is16(db) && is16(dx)) {
          if (baseCodes < 0) baseCodes = inAt(heap, arrays[1]!, addressOf(at, 1), 2, b, len, baseCodesAt);
          counts[k]! += wasm.tiesCount16(baseCodes, inAt(heap, arrays[k + 2]!, addressOf(at, k + 2), 2, b, len, xCodesAt), len, cut, db, dx);
          continue;
        }
        if (baseF32 < 0) baseF32 = stage(heap, arrays[1]!, addressOf(at, 1), db, b, len, baseCodesAt, baseAt);
        counts[k]! += wasm.tiesCount(baseF32, stage(heap, arrays[k + 2]!, addressOf(at, k + 2), dx, b, len, xCodesAt, xAt), len, cut);
      }
    }
    return counts;
  };

  // The two-task-vector merge kernels' (TIES, DARE) layout after their parameter block: base, x1,
  // x2, output and encoded codes, 4 × BLOCK bytes each.
  const [baseAt, x1At, x2At, outAt, codesAt] = [0, 1, 2, 3, 4].map((k) => base + PARAMS + k * 4 * BLOCK) as [number, number, number, number, number];
  const MERGE_BYTES = PARAMS + 20 * BLOCK;
  /** Whether the merge kernels take these dtypes (else the JavaScript op runs). */
  const mergeable = ({ db, d0, d1, od }: Params) => stageable(db) && stageable(d0) && stageable(d1) && (od === 1 || (od !== undefined && encoders[od] !== undefined));

  /**
   * The block loop of the merge kernels over arrays = [outBytes, baseBytes, x1Bytes, x2Bytes, …]:
   * each block's inputs go into `heap` (from heapFor(MERGE_BYTES), taken before the caller's
   * parameter views) as 16-bit codes when every dtype in and out is F16 or BF16 — `fused`
   * writes codes — else as F32 — `staged` writes F32, encoded here. Both get the block's
   * addresses (inAt, outputAt: in place where the arrays live in this memory).
   * `inputs(b, len)` copies in anything else the kernel reads.
   */
  type MergeKernel = (len: number, out: number, base: number, x1: number, x2: number) => void;
  const mergeBlocks = (heap: Uint8Array, arrays: Arrays, at: At, from: number, to: number, params: Params, run: { fused: MergeKernel; staged: MergeKernel; inputs?: (b: number, len: number) => void }): void => {
    const { db, d0, d1, od } = params;
    const fused = is16(db) && is16(d0) && is16(d1) && is16(od);
    const outSize = od === 1 ? 4 : encodedSize(od!);
    const out = arrays[0]!;
    const outAddress = addressOf(at, 0);
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      run.inputs?.(b, len);
      if (fused) {
        const o = outputAt(outAddress, 2, b, len, outAt);
        run.fused(len, o, inAt(heap, arrays[1]!, addressOf(at, 1), 2, b, len, baseAt), inAt(heap, arrays[2]!, addressOf(at, 2), 2, b, len, x1At), inAt(heap, arrays[3]!, addressOf(at, 3), 2, b, len, x2At));
        copyOut(heap, out, o, 2, b, len, outAt);
        continue;
      }
      const baseF32 = stage(heap, arrays[1]!, addressOf(at, 1), db!, b, len, codesAt, baseAt);
      const x1F32 = stage(heap, arrays[2]!, addressOf(at, 2), d0!, b, len, codesAt, x1At);
      const x2F32 = stage(heap, arrays[3]!, addressOf(at, 3), d1!, b, len, codesAt, x2At);
      if (od === 1) {
        const o = outputAt(outAddress, 4, b, len, outAt);
        run.staged(len, o, baseF32, x1F32, x2F32);
        copyOut(heap, out, o, 4, b, len, outAt);
        continue;
      }
      run.staged(len, outAt, baseF32, x1F32, x2F32);
      const o = outputAt(outAddress, outSize, b, len, codesAt);
      encoders[od!]!(outAt, o, pad8(len));
      copyOut(heap, out, o, outSize, b, len, codesAt);
    }
  };

  /** Two task vectors, arrays = [outBytes, baseBytes, x1Bytes, x2Bytes], params.db, d0, d1, od (see tiesMergeEncoded); other counts take tiesMergeStagedN. */
  const tiesMergeEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    if (arrays.length !== 4) return tiesMergeStagedN(arrays, from, to, params, at) ?? jsOps.tiesMergeEncoded!(arrays, from, to, params);
    if (!mergeable(params)) return jsOps.tiesMergeEncoded!(arrays, from, to, params);
    const heap = heapFor(MERGE_BYTES);
    const p = new Float64Array(memory.buffer, base, 9);
    p.set([params.w0!, params.w1!, params.c0!, params.c1!, params.q0!, params.q1!, 0, 0, params.lambda!]);
    mergeBlocks(heap, arrays, at, from, to, params, {
      // The 16-bit codes go in and come out as they are (tiesMerge16).
      fused: (len, o, b, x1, x2) => wasm.tiesMerge16(o, b, x1, x2, len, base, params.db!, params.d0!, params.d1!, params.od!),
      staged: (len, o, b, x1, x2) => wasm.tiesMerge2(o, b, x1, x2, len, base),
    });
    return [p[6]!, p[7]!];
  };

  /**
   * Two task vectors, arrays = [outBytes, baseBytes, x1Bytes, x2Bytes] (see kernel-ops-module's
   * dareMergeEncoded; other counts take dareMergeStagedN): the kernels draw the keep masks
   * (dareMerge16's draw parameters). A range
   * whose draw indices cross a multiple of 2^32 (a key of more than 2^32 elements) runs the
   * JavaScript op, which changes the streams' key there.
   */
  const dareMergeEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const first = params.offset! + from;
    const hi = Math.floor(first / 4294967296);
    if (Math.floor((params.offset! + to - 1) / 4294967296) !== hi) return jsOps.dareMergeEncoded!(arrays, from, to, params);
    if (arrays.length !== 4) return dareMergeStagedN(arrays, from, to, params, at, hi) ? undefined : jsOps.dareMergeEncoded!(arrays, from, to, params);
    if (!mergeable(params)) return jsOps.dareMergeEncoded!(arrays, from, to, params);
    const heap = heapFor(MERGE_BYTES);
    new Float64Array(memory.buffer, base, 6).set([params.w0!, params.w1!, params.density!, params.lambda!, params.divisor!, params.elect!]);
    const draws = new Uint32Array(memory.buffer, base + 128, 6);
    const threshold = params.threshold!;
    draws.set([params.s0!, params.s1!, 0, Math.min(threshold, 4294967295), threshold < 4294967296 ? 0xffffffff : 0, hi]);
    mergeBlocks(heap, arrays, at, from, to, params, {
      inputs: (b) => {
        draws[2] = (params.offset! + b) >>> 0;
      },
      // The 16-bit codes go in and come out as they are (dareMerge16).
      fused: (len, o, b, x1, x2) => wasm.dareMerge16(o, b, x1, x2, pad8(len), base, params.db!, params.d0!, params.d1!, params.od!),
      staged: (len, o, b, x1, x2) => wasm.dareMerge2(o, b, x1, x2, pad8(len), base),
    });
    return undefined;
  };

  /**
   * The merge kernels of any number of task vectors (dareMergeN, tiesMergeN), arrays = [outBytes,
   * baseBytes, x1Bytes, …]: stagedBlocks decodes each block as F32 (the base its input 0) and
   * `kernel(resultAt, len, b, realLen, paramsAt, lanesAt)` merges it, after `setUp(paramsAt)`
   * wrote the parameters (once, when the module's memory has its room). Table at `base`: the
   * m + 1 input pointers, the kernel's `paramBytes` at paramsAt, 3·m lanes at lanesAt. False when
   * a dtype cannot be staged (nothing ran).
   */
  const mergeStagedN = (arrays: Arrays, from: number, to: number, params: Params, at: At, paramBytes: number, setUp: (paramsAt: number) => void, kernel: (resultAt: number, len: number, b: number, realLen: number, paramsAt: number, lanesAt: number) => void): boolean => {
    const m = arrays.length - 2;
    const staged: Params = { od: params.od!, d0: params.db! };
    for (let k = 0; k < m; k++) staged[`d${k + 1}`] = params[`d${k}`]!;
    if (!stagedDtypes(m + 1, staged)) return false;
    const paramsAt = base + ((4 * (m + 1) + 15) & ~15);
    const lanesAt = paramsAt + ((paramBytes + 15) & ~15);
    let ready = false;
    stagedBlocks(arrays, from, to, staged, at, lanesAt + 48 * m - base, (inputsAt, resultAt, len, b, realLen) => {
      if (!ready) {
        setUp(paramsAt);
        ready = true;
      }
      new Uint32Array(memory.buffer, base, m + 1).set(inputsAt);
      kernel(resultAt, len, b, realLen, paramsAt, lanesAt);
    });
    return true;
  };

  /**
   * DARE of one, three or more task vectors (dareMergeN on the staged blocks, its draws as
   * dareMerge16's), params as kernel-ops-module's dareMergeEncoded; every draw index in the 2^32
   * block `hi`. False when a dtype cannot be staged.
   */
  const dareMergeStagedN = (arrays: Arrays, from: number, to: number, params: Params, at: At, hi: number): boolean => {
    const m = arrays.length - 2;
    const threshold = params.threshold!;
    return mergeStagedN(
      arrays,
      from,
      to,
      params,
      at,
      48 + 12 * m,
      (paramsAt) => {
        new Float64Array(memory.buffer, paramsAt, 4).set([params.lambda!, params.divisor!, params.density!, params.elect!]);
        new Uint32Array(memory.buffer, paramsAt + 32, 4).set([0, Math.min(threshold, 4294967295), threshold < 4294967296 ? 0xffffffff : 0, hi]);
        new Float64Array(memory.buffer, paramsAt + 48, m).set(Array.from({ length: m }, (_, k) => params[`w${k}`]!));
        new Uint32Array(memory.buffer, paramsAt + 48 + 8 * m, m).set(Array.from({ length: m }, (_, k) => params[`s${k}`]!));
      },
      (resultAt, len, b, _realLen, paramsAt, lanesAt) => {
        new Uint32Array(memory.buffer, paramsAt + 32, 1)[0] = (params.offset! + b) >>> 0;
        wasm.dareMergeN(resultAt, base, m, len, paramsAt, lanesAt);
      },
    );
  };

  /**
   * TIES's merge pass of one, three or more task vectors (tiesMergeN on the staged blocks),
   * params as kernel-ops-module's tiesMergeEncoded: the cut-equal elements kept per task vector,
   * or undefined when a dtype cannot be staged.
   */
  const tiesMergeStagedN = (arrays: Arrays, from: number, to: number, params: Params, at: At): number[] | undefined => {
    const m = arrays.length - 2;
    let paramsAt = -1;
    const staged = mergeStagedN(
      arrays,
      from,
      to,
      params,
      at,
      8 + 36 * m,
      (address) => {
        paramsAt = address;
        const p = new Float64Array(memory.buffer, address, 1 + 4 * m);
        p[0] = params.lambda!;
        for (let k = 0; k < m; k++) p.set([params[`w${k}`]!, params[`c${k}`]!, params[`q${k}`]!, 0], 1 + 4 * k);
      },
      (resultAt, _len, _b, realLen, address, lanesAt) => wasm.tiesMergeN(resultAt, base, m, realLen, address, lanesAt),
    );
    if (!staged) return undefined;
    // An empty range runs no block: nothing kept.
    if (paramsAt < 0) return new Array<number>(m).fill(0);
    const p = new Float64Array(memory.buffer, paramsAt, 1 + 4 * m);
    return Array.from({ length: m }, (_, k) => p[4 + 4 * k]!);
  };

  /**
   * LoRA's low-rank product, arrays = [w, up, down] (F32), rows [from, to) of up into rows
   * rowOffset + from … of w (see kernel-ops-module's addLowRankProduct): `down` copied in once
   * (or read in place), then blocks of rows of up and w copied in, w's copied back.
   */
  const addLowRankProduct = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const [w, up, down] = arrays as [Float32Array, Float32Array, Float32Array];
    const { rank, cols, factor, rowOffset } = params as { rank: number; cols: number; factor: number; rowOffset: number };
    if (from >= to || rank === 0 || cols === 0) return jsOps.addLowRankProduct!(arrays, from, to, params);
    const wAddress = addressOf(at, 0);
    const upAddress = addressOf(at, 1);
    let downIn = addressOf(at, 2);
    const downBytes = downIn >= 0 ? 0 : (4 * rank * cols + 15) & ~15;
    // Rows per block: about 512 KiB of w and up, at least one.
    const blockRows = Math.max(1, Math.floor(2 ** 19 / (4 * (cols + rank))));
    const upAt = base + downBytes;
    const wAt = upAt + ((4 * blockRows * rank + 15) & ~15);
    heapFor(wAt + 4 * blockRows * cols - base);
    if (downIn < 0) {
      new Float32Array(memory.buffer, base, rank * cols).set(down);
      downIn = base;
    }
    for (let b = from; b < to; b += blockRows) {
      const n = Math.min(to, b + blockRows) - b;
      const upIn = upAddress >= 0 ? upAddress + 4 * b * rank : upAt;
      if (upAddress < 0) new Float32Array(memory.buffer, upAt, n * rank).set(up.subarray(b * rank, (b + n) * rank));
      const rows = w.subarray((rowOffset + b) * cols, (rowOffset + b + n) * cols);
      const wIn = wAddress >= 0 ? wAddress + 4 * (rowOffset + b) * cols : wAt;
      if (wAddress < 0) new Float32Array(memory.buffer, wAt, n * cols).set(rows);
      wasm.addLowRankProduct(wIn, upIn, downIn, n, rank, cols, factor);
      if (wAddress < 0) rows.set(new Float32Array(memory.buffer, wAt, n * cols));
    }
    return undefined;
  };

  /**
   * The randomized SVD's two products with A in the module (svdTimesRight,
   * svdTimesLeftTransposed): A and the F64 factor copied in, the product copied out. The
   * randomizedSvd op takes them in place of its JavaScript loops (randomized-svd-module's
   * SvdProducts); A is copied per product, about 1/(2·l) of its arithmetic.
   */
  const svdProduct = (kernel: (out: number, a: number, x: number, m: number, n: number, l: number) => void, a: Float32Array, m: number, n: number, x: Float64Array, l: number, outRows: number): Float64Array => {
    const aAt = base;
    const xAt = aAt + ((4 * m * n + 15) & ~15);
    const outAt = xAt + 8 * x.length;
    heapFor(outAt + 8 * outRows * l - base);
    new Float32Array(memory.buffer, aAt, m * n).set(a.subarray(0, m * n));
    new Float64Array(memory.buffer, xAt, x.length).set(x);
    kernel(outAt, aAt, xAt, m, n, l);
    return new Float64Array(memory.buffer, outAt, outRows * l).slice();
  };
  const svdProducts: SvdProducts = {
    timesRight: (a: Float32Array, m: number, n: number, x: Float64Array, l: number) => svdProduct(wasm.svdTimesRight, a, m, n, x, l, m),
    timesLeftTransposed: (a: Float32Array, m: number, n: number, q: Float64Array, l: number) => svdProduct(wasm.svdTimesLeftTransposed, a, m, n, q, l, n),
  };
  type SvdOp = (arrays: Arrays, from: number, to: number, params: Params, at: At, products: SvdProducts) => unknown;

  /**
   * arrays = [aBytes, bBytes], params.d0/d1: slerp's sums of 16-bit inputs (dotAndNorms16), in
   * the JavaScript op's order: four partials each (element i into (i − from) mod 4; every block
   * but the last is a multiple of 8 long), added as (p0 + p1) + (p2 + p3).
   */
  const dotAndNormsEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const { d0, d1 } = params;
    const fused = is16(d0) && is16(d1);
    // Other mixes of F32, F16, BF16 and F8 are staged as F32 (copied, or decoded here).
    if (!fused && !(stageable(d0) && stageable(d1))) return jsOps.dotAndNormsEncoded!(arrays, from, to, params);
    const sumsAt = base;
    const aAt = base + 96;
    const bAt = aAt + 4 * BLOCK;
    const codesAt = bAt + 4 * BLOCK;
    const heap = heapFor(96 + 12 * BLOCK);
    new Float64Array(memory.buffer, sumsAt, 12).fill(0);
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      if (fused) {
        const a = inAt(heap, arrays[0]!, addressOf(at, 0), 2, b, len, aAt);
        wasm.dotAndNorms16(a, inAt(heap, arrays[1]!, addressOf(at, 1), 2, b, len, bAt), len, d0!, d1!, sumsAt);
      } else {
        const a = stage(heap, arrays[0]!, addressOf(at, 0), d0!, b, len, codesAt, aAt);
        wasm.dotAndNormsF32(a, stage(heap, arrays[1]!, addressOf(at, 1), d1!, b, len, codesAt, bAt), len, sumsAt);
      }
    }
    const p = new Float64Array(memory.buffer, sumsAt, 12);
    return [0, 4, 8].map((i) => p[i]! + p[i + 1]! + (p[i + 2]! + p[i + 3]!));
  };

  /**
   * arrays = [outBytes, x1Bytes, …, xnBytes], params.exponent, d0 … d(n−1), od (see
   * kernel-ops-module's consensusEncoded): each block of each input staged as F32 in the module
   * (decoded there), consensusF32, and the result encoded there.
   */
  const consensusEncoded = (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
    const n = arrays.length - 1;
    if (!stagedDtypes(n, params)) return jsOps.consensusEncoded!(arrays, from, to, params);
    // Table: pointers (u32), then the kernel's scratch (64 bytes per input).
    const scratchAt = base + ((4 * n + 15) & ~15);
    stagedBlocks(arrays, from, to, params, at, scratchAt - base + 64 * n, (inputsAt, resultAt, len) => {
      new Uint32Array(memory.buffer, base, n).set(inputsAt);
      wasm.consensusF32(resultAt, base, n, len, params.exponent!, scratchAt);
    });
    return undefined;
  };

  /**
   * A three-input element-wise op on encoded inputs, arrays = [outBytes, a, b, c], with one
   * scalar parameter: `kernel16` (out, a, b, c, len, scalar, codes…) when all four are 16-bit;
   * other mixes of F32, F16, BF16 and F8 staged as F32 in the module for `kernelF32` (out, a, b,
   * c, len, scalar) and the result encoded there; the rest run the JavaScript op `name`.
   */
  const threeInputs = (
    name: string,
    kernel16: (out: number, a: number, b: number, c: number, len: number, scalar: number, codeA: number, codeB: number, codeC: number, outCode: number) => void,
    kernelF32: (out: number, a: number, b: number, c: number, len: number, scalar: number) => void,
    scalarOf: (params: Params) => number,
  ) => {
    return (arrays: Arrays, from: number, to: number, params: Params, at?: At): unknown => {
      const { od, d0, d1, d2 } = params;
      const out = arrays[0]!;
      if (is16(od) && is16(d0) && is16(d1) && is16(d2)) {
        // Staging: the three inputs' blocks of codes, then the output's.
        const heap = heapFor(4 * 2 * BLOCK);
        const stagingAt = base + 3 * 2 * BLOCK;
        for (let b = from; b < to; b += BLOCK) {
          const len = Math.min(to, b + BLOCK) - b;
          const [p0, p1, p2] = [1, 2, 3].map((k) => inAt(heap, arrays[k]!, addressOf(at, k), 2, b, len, base + (k - 1) * 2 * BLOCK)) as [number, number, number];
          const o = outputAt(addressOf(at, 0), 2, b, len, stagingAt);
          kernel16(o, p0, p1, p2, pad8(len), scalarOf(params), d0!, d1!, d2!, od!);
          copyOut(heap, out, o, 2, b, len, stagingAt);
        }
        return undefined;
      }
      if (!stagedDtypes(3, params)) return jsOps[name]!(arrays, from, to, params);
      stagedBlocks(arrays, from, to, params, at, 0, ([a, b, c], resultAt, len) => kernelF32(resultAt, a!, b!, c!, len, scalarOf(params)));
      return undefined;
    };
  };
  /** a + α·(b − c) (add_difference), and train_difference's formula. */
  const addDifferenceEncoded = threeInputs("addDifferenceEncoded", wasm.addDifference16, wasm.addDifferenceF32, (p) => p.alpha!);
  const trainDifferenceEncoded = threeInputs("trainDifferenceEncoded", wasm.trainDifference16, wasm.trainDifferenceF32, (p) => p.scale!);

  /**
   * Runs `kernel(address, len)` over values[from…to) of arrays[0] (u32) in blocks: in place when
   * the array lives in this memory, else each block copied in after 16 bytes for results at `base`.
   */
  const u32Blocks = (arrays: Arrays, from: number, to: number, at: At | undefined, kernel: (address: number, len: number) => void): void => {
    const heap = heapFor(16 + 4 * BLOCK);
    const address = addressOf(at, 0);
    if (address >= 0) {
      kernel(address + 4 * from, to - from);
      return;
    }
    for (let b = from; b < to; b += BLOCK) {
      const len = Math.min(to, b + BLOCK) - b;
      kernel(inAt(heap, arrays[0]!, -1, 4, b, len, base + 16), len);
    }
  };
  /**
   * TIES's cut in a window list (kernel-ops-module's cutInList): the level-0 bins of the offsets
   * from lo, the cut's bin among them, then (when a bin spans several bit patterns) that bin's
   * values by their low bits. The bins are TIES's histogram scratch, zero again after each level.
   */
  const cutInList = (arrays: Arrays, from: number, to: number, params: Params, at?: At): [number, number] => {
    const { lo, hi, need } = params as { lo: number; hi: number; need: number };
    const width = (hi - lo) >>> 0;
    const shift = Math.max(0, 16 - Math.clz32(width));
    const last = width >>> shift;
    // The memory must reach past the bins and the results before they are touched.
    heapFor(16 + 4 * BLOCK);
    const level = (bin: number, rank: number): [bin: number, above: number] => {
      new Uint32Array(memory.buffer, rangeAt, 2).set([0xffffffff, 0]);
      u32Blocks(arrays, from, to, at, (address, len) => wasm.cutInListBins(address, len, lo, shift, last, bin, histAt, rangeAt));
      const found = wasm.cutInListRank(histAt, rangeAt, rank, base) >>> 0;
      return [found, new Uint32Array(memory.buffer, base, 1)[0]!];
    };
    const [bin, above] = level(-1, need);
    if (shift === 0) return [(lo + bin) >>> 0, need - above];
    const [low, aboveLow] = level(bin, need - above);
    return [(lo + bin * 2 ** shift + low) >>> 0, need - above - aboveLow];
  };
  const countEqual = (arrays: Arrays, from: number, to: number, params: Params, at?: At): number => {
    let count = 0;
    u32Blocks(arrays, from, to, at, (address, len) => (count += wasm.countEqual(address, len, params.value!)));
    return count;
  };

  /** `params` with the dtype codes of the *Encoded ops all F32 (code 1): base, x, output and m task vectors. */
  const allF32 = (params: Params, m: number): Params => {
    const p: Params = { ...params, db: 1, dx: 1, od: 1 };
    for (let k = 0; k < m; k++) p[`d${k}`] = 1;
    return p;
  };

  const ops: KernelOps = {
    ...jsOps,
    decode,
    taskVectorHistogramEncoded,
    taskVectorWindowEncoded,
    taskVectorWindowsEncoded,
    countAtMagnitudeEncoded,
    tiesMergeEncoded,
    dareMergeEncoded,
    dotAndNormsEncoded,
    consensusEncoded,
    addDifferenceEncoded,
    trainDifferenceEncoded,
    cutInList,
    countEqual,
    addLowRankProduct,
    // Present where randomized-svd-module's ops were merged into jsOps (the workers').
    ...(jsOps.randomizedSvd ? { randomizedSvd: (arrays: Arrays, from: number, to: number, params: Params) => (jsOps.randomizedSvd as unknown as SvdOp)(arrays, from, to, params, undefined, svdProducts) } : {}),
    // The F32 forms are the encoded ones with every dtype F32 (staging copies F32 as it is).
    taskVectorHistogram: (arrays, from, to, params, at) => taskVectorHistogramEncoded(arrays, from, to, allF32(params, 0), at),
    taskVectorWindow: (arrays, from, to, params, at) => taskVectorWindowEncoded(arrays, from, to, allF32(params, 0), at),
    countAtMagnitude: (arrays, from, to, params, at) => countAtMagnitudeEncoded(arrays, from, to, allF32(params, arrays.length - 2), at),
    consensus: (arrays, from, to, params, at) => consensusEncoded(arrays, from, to, allF32(params, arrays.length - 1), at),
    tiesMerge: (arrays, from, to, params, at) => tiesMergeEncoded(arrays, from, to, allF32(params, arrays.length - 2), at),
    encode,
    /** Which kernels a thread runs (tests ask the workers). */
    kernelKind: () => "wasm-simd",
    weightedSum(arrays, from, to, params, at) {
      // One or two F32 inputs: the JS loops are unrolled and bound by memory traffic, which the
      // copies through the module's memory would only add to (measured: no gain or a loss).
      if (arrays.length < 4) return jsOps.weightedSum!(arrays, from, to, params);
      weightedSumF32(arrays, from, to, params, at);
      return undefined;
    },
    weightedSumEncoded(arrays, from, to, params, at) {
      // F16 and BF16, in and out, in any mix: the fused kernels. Other mixes of F32, F16, BF16
      // and F8 (F32 checkpoints, usually) are staged as F32 in the module; the rest run the
      // JavaScript kernel.
      const n = arrays.length - 1;
      let all16 = n >= 1 && is16(params.od);
      for (let k = 0; k < n && all16; k++) all16 = is16(params[`d${k}`]);
      if (all16) {
        weightedSum16(arrays, from, to, params, at);
        return undefined;
      }
      if (!stagedDtypes(n, params)) return jsOps.weightedSumEncoded!(arrays, from, to, params);
      weightedSumStaged(arrays, from, to, params, at);
      return undefined;
    },
  };
  if (!arena) return ops;
  // An op that needs more scratch than the arena gave runs jsOps: heapFor throws before the op
  // writes anything.
  const guarded: KernelOps = { ...ops };
  for (const [name, op] of Object.entries(ops)) {
    if (op === jsOps[name]) continue;
    guarded[name] = (arrays, from, to, params, at) => {
      try {
        return op(arrays, from, to, params, at);
      } catch (error) {
        if (error !== noRoom) throw error;
        return jsOps[name]!(arrays, from, to, params);
      }
    };
  }
  return guarded;
}
