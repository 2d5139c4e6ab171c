import type { CounterDraws } from "./counter-draws-module.js";
import type { FloatCodecs } from "./float-codecs-module.js";

/**
 * The elementwise kernels, as range operations `op(arrays, from, to, params)` that the CPU
 * backend runs either inline or split by index range across worker threads.
 *
 * Like `floatCodecsModule`, this function is serialised with `toString()` into the worker
 * source, so it references only globals and its `codecs` and `draws` arguments.
 */
export function kernelOpsModule(codecs: FloatCodecs, draws: CounterDraws) {
  type Arrays = readonly ArrayBufferView[];
  type Params = Record<string, number>;
  // `at`: each array's address in a kernel arena's memory, for wasm-kernels-module's arena
  // instances (−1: not there); these ops ignore it.
  type RangeOp = (arrays: Arrays, from: number, to: number, params: Params, at?: readonly number[]) => unknown;

  const f32 = (arrays: Arrays, i: number) => arrays[i] as Float32Array;

  // Per-thread scratch of the ops on encoded inputs, one block at a time (it stays in cache): F32
  // blocks the inputs are decoded into (f32Blocks, decodeBlock) and the fused sum's F64 block.
  const FUSED_BLOCK = 4096;
  let fusedAcc: Float64Array | undefined;
  const blocks: Float32Array[] = [];
  const f32Blocks = (count: number): Float32Array[] => {
    while (blocks.length < count) blocks.push(new Float32Array(FUSED_BLOCK));
    return blocks.slice(0, count);
  };
  /** Elements [start, end) of `bytes` (dtype `code`) decoded into block[0 … end − start). */
  const decodeBlock = (bytes: ArrayBufferView, code: number, block: Float32Array, start: number, end: number) => {
    const size = codecs.ELEMENT_SIZE[code]!;
    const all = bytes as Uint8Array;
    codecs.decodeRange(new Uint8Array(all.buffer, all.byteOffset + start * size, (end - start) * size), code, block, 0, end - start);
  };

  /**
   * The block loop of the three-input ops on encoded inputs, arrays = [outBytes, aBytes, bBytes,
   * cBytes] (params.d0–d2, od): each block decoded into F32 blocks a, b, c, `block` writes its
   * results into b, which is encoded into the output.
   */
  const threeInputBlocks = (arrays: Arrays, from: number, to: number, params: Params, block: (a: Float32Array, b: Float32Array, c: Float32Array, len: number) => void): void => {
    const [a, b, c] = f32Blocks(3) as [Float32Array, Float32Array, Float32Array];
    const od = params.od!;
    const outSize = codecs.ELEMENT_SIZE[od]!;
    const outBytes = arrays[0] as Uint8Array;
    for (let start = from; start < to; start += FUSED_BLOCK) {
      const end = Math.min(to, start + FUSED_BLOCK);
      decodeBlock(arrays[1]!, params.d0!, a, start, end);
      decodeBlock(arrays[2]!, params.d1!, b, start, end);
      decodeBlock(arrays[3]!, params.d2!, c, start, end);
      block(a, b, c, end - start);
      codecs.encodeRange(b, od, outBytes.subarray(start * outSize, end * outSize), 0, end - start);
    }
  };

  let f16Table: Float32Array | undefined;
  let deltaBlock: Float32Array | undefined;
  const buildF16Table = () => {
    const t = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) t[i] = codecs.f32FromBits(codecs.f16BitsToF32Bits(i));
    return t;
  };
  let bf16Table: Float32Array | undefined;
  const buildBF16Table = () => {
    const t = new Float32Array(65536);
    new Uint32Array(t.buffer).forEach((_, i, bits) => (bits[i] = i << 16));
    return t;
  };
  const scalar32 = new Float32Array(1);
  const scalarBits = new Uint32Array(scalar32.buffer);

  // The sums of dot, sumSquares and dotAndNorms (and their WebAssembly kernel) over a range: four
  // F64 partials each, element i into partial (i − from) mod 4 — two lanes of two SIMD vectors,
  // whose additions run side by side where one sum in index order waits on each add — then
  // (p0 + p1) + (p2 + p3). Twelve: Σ a·b, Σ a², Σ b² (dot and sumSquares use the first four).
  const partials = new Float64Array(12);
  const sumOfPartials = (p: Float64Array, at: number): number => p[at]! + p[at + 1]! + (p[at + 2]! + p[at + 3]!);
  /** dotAndNorms's step: x·y, x², y² into partial k of each of the three sums. */
  const addDotAndNorms = (k: number, x: number, y: number): void => {
    partials[k]! += x * y;
    partials[4 + k]! += x * x;
    partials[8 + k]! += y * y;
  };
  const dotAndNormsOfPartials = (): [number, number, number] => [sumOfPartials(partials, 0), sumOfPartials(partials, 4), sumOfPartials(partials, 8)];

  /**
   * The all-F16 case of weightedSumEncoded for 1–3 inputs: one pass, no intermediate arrays,
   * one specialised loop per input count (branches inside the hot loop halve its speed).
   * Same order and F64 accumulation as weightedSum, then F32, then F16 round-to-nearest-even.
   */
  const weightedSumF16 = (arrays: Arrays, from: number, to: number, params: Params, n: number, lut: Float32Array) => {
    const u16 = (i: number) => {
      const b = arrays[i] as Uint8Array;
      return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);
    };
    const dst = u16(0);
    const f32 = scalar32;
    const bits = scalarBits;
    const slow = codecs.f32BitsToF16Bits;
    const a = u16(1);
    const wa = params.w0!;
    if (n === 3) {
      const b = u16(2);
      const c = u16(3);
      const wb = params.w1!;
      const wc = params.w2!;
      for (let i = from; i < to; i++) {
        // `0 +` as weightedSum's accumulator starts at +0 (so all -0 products give +0, like it).
        f32[0] = 0 + wa * lut[a[i]!]! + wb * lut[b[i]!]! + wc * lut[c[i]!]!;
        const x = bits[0]!;
        const abs = x & 0x7fffffff;
        dst[i] = abs >= 0x38800000 && abs < 0x477ff000 ? ((x >>> 16) & 0x8000) | (((abs - 0x38000000) >>> 13) + (((abs & 0x1fff) + 0xfff + ((abs >>> 13) & 1)) >>> 13)) : slow(x);
      }
    } else if (n === 2) {
      const b = u16(2);
      const wb = params.w1!;
      for (let i = from; i < to; i++) {
        f32[0] = wa * lut[a[i]!]! + wb * lut[b[i]!]!;
        const x = bits[0]!;
        const abs = x & 0x7fffffff;
        dst[i] = abs >= 0x38800000 && abs < 0x477ff000 ? ((x >>> 16) & 0x8000) | (((abs - 0x38000000) >>> 13) + (((abs & 0x1fff) + 0xfff + ((abs >>> 13) & 1)) >>> 13)) : slow(x);
      }
    } else {
      for (let i = from; i < to; i++) {
        f32[0] = wa * lut[a[i]!]!;
        const x = bits[0]!;
        const abs = x & 0x7fffffff;
        dst[i] = abs >= 0x38800000 && abs < 0x477ff000 ? ((x >>> 16) & 0x8000) | (((abs - 0x38000000) >>> 13) + (((abs & 0x1fff) + 0xfff + ((abs >>> 13) & 1)) >>> 13)) : slow(x);
      }
    }
  };

  /**
   * All-F16 inputs beyond three: per block, the first three inputs in one unrolled pass into an
   * F64 accumulator, each further input in its own pass, then one encode pass. The additions
   * happen in input order, so the result equals weightedSum's.
   */
  let manyAcc: Float64Array | undefined;
  const weightedSumManyF16 = (arrays: Arrays, from: number, to: number, params: Params, n: number, lut: Float32Array) => {
    const u16 = (i: number) => {
      const b = arrays[i] as Uint8Array;
      return new Uint16Array(b.buffer, b.byteOffset, b.byteLength >>> 1);
    };
    manyAcc ??= new Float64Array(FUSED_BLOCK);
    const acc = manyAcc;
    const dst = u16(0);
    const inputs: Uint16Array[] = [];
    const weights: number[] = [];
    for (let k = 0; k < n; k++) {
      inputs.push(u16(k + 1));
      weights.push(params[`w${k}`]!);
    }
    const [a, b, c] = inputs as [Uint16Array, Uint16Array, Uint16Array];
    const [wa, wb, wc] = weights as [number, number, number];
    const f32 = scalar32;
    const bits = scalarBits;
    const slow = codecs.f32BitsToF16Bits;
    for (let base = from; base < to; base += FUSED_BLOCK) {
      const len = Math.min(to, base + FUSED_BLOCK) - base;
      for (let j = 0; j < len; j++) {
        const i = base + j;
        acc[j] = 0 + wa * lut[a[i]!]! + wb * lut[b[i]!]! + wc * lut[c[i]!]!;
      }
      for (let k = 3; k < n; k++) {
        const x = inputs[k]!;
        const w = weights[k]!;
        for (let j = 0; j < len; j++) acc[j] = acc[j]! + w * lut[x[base + j]!]!;
      }
      for (let j = 0; j < len; j++) {
        f32[0] = acc[j]!;
        const x = bits[0]!;
        const abs = x & 0x7fffffff;
        dst[base + j] = abs >= 0x38800000 && abs < 0x477ff000 ? ((x >>> 16) & 0x8000) | (((abs - 0x38000000) >>> 13) + (((abs & 0x1fff) + 0xfff + ((abs >>> 13) & 1)) >>> 13)) : slow(x);
      }
    }
  };

  const { lowbias32, drawKey } = draws;
  /**
   * DARE's drop of `len` elements: x[at + j] becomes (x − base)[at + j] / density where draw
   * index + j of stream `seed` (counterDrawsModule's drawBits) is ≥ threshold (⌈p·2^32⌉), else 0.
   * In F32 like mergekit's bernoulli on F32 tensors (the delta rounded, then divided by the F32
   * density; `density` is an F32 value, and the store rounds the quotient).
   */
  const dropDrawn = (x: Float32Array, base: Float32Array, at: number, len: number, seed: number, index: number, threshold: number, density: number) => {
    let hi = Math.floor(index / 4294967296);
    let key = drawKey(seed, hi);
    for (let j = 0; j < len; j++) {
      const i = index + j;
      if (i >= (hi + 1) * 4294967296) key = drawKey(seed, ++hi);
      const keep = +(lowbias32(((i >>> 0) ^ key) >>> 0) >= threshold);
      const v = Math.fround(x[at + j]! - base[at + j]!) / density;
      // Multiplying by 0/1 avoids a branch that mispredicts at random; a finite dropped delta
      // becomes ±0 instead of +0, which adds the same +0 in combineTaskVectors' sums (they start
      // at +0) and never agrees with an elected sign. Non-finite deltas keep the select.
      x[at + j] = v - v === 0 ? v * keep : keep ? v : 0;
    }
  };

  /**
   * b^e for an integer e ≥ 1 by squaring, in F64: b squared while e is even, then each further
   * square multiplied in for each set bit (e = 4: b², b⁴). Consensus's weight power; the
   * WebAssembly kernel multiplies in the same order (Math.pow's rounding is the engine's own).
   */
  const consensusPower = (b: number, e: number): number => {
    let square = b;
    let rest = e;
    while ((rest & 1) === 0) {
      square *= square;
      rest >>>= 1;
    }
    let w = square;
    for (rest >>>= 1; rest > 0; rest >>>= 1) {
      square *= square;
      if (rest & 1) w *= square;
    }
    return w;
  };

  // TIES's cut among a window pass's list (the ops cutInList, binOfRank, countEqual): its bins,
  // zero between calls, made when first needed.
  let cutBins: Uint32Array | undefined;
  /**
   * The bin of `histogram` holding the `need`-th largest value, counting down from bin `top` (those
   * above it are empty), and how many values lie in the bins above it; bin 0 when fewer are counted.
   */
  const binOfRank = (histogram: Uint32Array, top: number, need: number): [bin: number, above: number] => {
    let count = 0;
    let bin = top;
    for (; bin > 0 && count + histogram[bin]! < need; bin--) count += histogram[bin]!;
    return [bin, count];
  };
  // The passes over the list, each a function of its own (V8 optimizes small hot loops best).
  const binValues = (values: Uint32Array, from: number, to: number, lo: number, shift: number, histogram: Uint32Array): void => {
    for (let i = from; i < to; i++) histogram[(values[i]! - lo) >>> shift]!++;
  };
  /**
   * Copies the values in bin `bin` ((v − lo) >>> shift) of values[from…to) into `out` (which holds
   * one more than there are), in order. Without a branch: each value is written, and the next one
   * goes after it only when it was in the bin.
   */
  const valuesInBin = (values: Uint32Array, from: number, to: number, lo: number, shift: number, bin: number, out: Uint32Array): void => {
    for (let i = from, j = 0; i < to; i++) {
      const v = values[i]!;
      out[j] = v;
      // 1 when the value's bin is `bin` (their XOR is 0), else 0: bins are below 2¹⁶.
      j += ((((v - lo) >>> shift) ^ bin) - 1) >>> 31;
    }
  };

  const ops: Record<string, RangeOp> = {
    decode(arrays, from, to, params) {
      codecs.decodeRange(arrays[0] as Uint8Array, params.dtype!, f32(arrays, 1), from, to);
    },
    encode(arrays, from, to, params) {
      codecs.encodeRange(f32(arrays, 0), params.dtype!, arrays[1] as Uint8Array, from, to);
    },
    /** arrays = [out, in0, in1, ...], params.w0, params.w1, ... */
    weightedSum(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const n = arrays.length - 1;
      // Two-input and first-input cases unrolled: they are the hot loops of most merges.
      if (n === 2) {
        const a = f32(arrays, 1);
        const b = f32(arrays, 2);
        const wa = params.w0!;
        const wb = params.w1!;
        for (let i = from; i < to; i++) out[i] = wa * a[i]! + wb * b[i]!;
        return;
      }
      const first = f32(arrays, 1);
      const w0 = params.w0!;
      if (n === 0) {
        out.fill(0, from, to);
        return;
      }
      // Accumulate in a F64 local per element so the order of the inputs does not lose bits.
      if (n === 1) {
        for (let i = from; i < to; i++) out[i] = w0 * first[i]!;
        return;
      }
      const inputs: Float32Array[] = [];
      const weights: number[] = [];
      for (let k = 0; k < n; k++) {
        inputs.push(f32(arrays, k + 1));
        weights.push(params[`w${k}`]!);
      }
      for (let i = from; i < to; i++) {
        let s = 0;
        for (let k = 0; k < n; k++) s += weights[k]! * inputs[k]![i]!;
        out[i] = s;
      }
    },
    /**
     * arrays = [outBytes, in0Bytes, in1Bytes, ...]; params.od (out dtype code), params.dK and
     * params.wK per input. Accumulates in F64 and rounds to F32 before encoding, exactly like
     * decode + weightedSum + encode.
     */
    weightedSumEncoded(arrays, from, to, params) {
      const n = arrays.length - 1;
      let allF16 = params.od === 2;
      for (let k = 0; k < n && allF16; k++) allF16 = params[`d${k}`] === 2;
      if (allF16) {
        f16Table ??= buildF16Table();
        if (n <= 3) weightedSumF16(arrays, from, to, params, n, f16Table);
        else weightedSumManyF16(arrays, from, to, params, n, f16Table);
        return;
      }
      const [tmp, out32] = f32Blocks(2) as [Float32Array, Float32Array];
      fusedAcc ??= new Float64Array(FUSED_BLOCK);
      const acc = fusedAcc;
      const od = params.od!;
      const outSize = codecs.ELEMENT_SIZE[od]!;
      const outBytes = arrays[0] as Uint8Array;
      for (let b = from; b < to; b += FUSED_BLOCK) {
        const e = Math.min(to, b + FUSED_BLOCK);
        const len = e - b;
        for (let k = 0; k < n; k++) {
          const w = params[`w${k}`]!;
          decodeBlock(arrays[k + 1]!, params[`d${k}`]!, tmp, b, e);
          // weightedSum starts from +0 for three or more inputs (its n = 1, 2 paths do not).
          if (k === 0 && n >= 3) for (let i = 0; i < len; i++) acc[i] = 0 + w * tmp[i]!;
          else if (k === 0) for (let i = 0; i < len; i++) acc[i] = w * tmp[i]!;
          else for (let i = 0; i < len; i++) acc[i] = acc[i]! + w * tmp[i]!;
        }
        for (let i = 0; i < len; i++) out32[i] = acc[i]!;
        codecs.encodeRange(out32, od, outBytes.subarray(b * outSize, e * outSize), 0, len);
      }
    },
    /**
     * arrays = [outBytes, aBytes, bBytes, cBytes]; params.d0–d2 (their dtype codes), od and alpha:
     * a + α·(b − c) rounded to F32 after each step, as sub, scale and add store it, then encoded.
     */
    addDifferenceEncoded(arrays, from, to, params) {
      const alpha = params.alpha!;
      threeInputBlocks(arrays, from, to, params, (a, b, c, len) => {
        for (let i = 0; i < len; i++) b[i] = a[i]! + Math.fround(Math.fround(b[i]! - c[i]!) * alpha);
      });
    },
    /**
     * arrays = [outBytes, aBytes, bBytes, cBytes]; params.d0–d2, od and scale: per element in F64,
     * a + ((scale·(b − c))·|b − a|) / (|b − a| + |b − c|), or a where the denominator is 0 (±0),
     * rounded to F32, then encoded.
     */
    trainDifferenceEncoded(arrays, from, to, params) {
      const scale = params.scale!;
      threeInputBlocks(arrays, from, to, params, (a, b, c, len) => {
        for (let i = 0; i < len; i++) {
          const ai = a[i]!;
          const diff = b[i]! - c[i]!;
          const dist = Math.abs(b[i]! - ai);
          const denom = dist + Math.abs(diff);
          b[i] = denom === 0 ? ai : ai + (scale * diff * dist) / denom;
        }
      });
    },
    scale(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      const s = params.s!;
      for (let i = from; i < to; i++) out[i] = a[i]! * s;
    },
    add(arrays, from, to) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      const b = f32(arrays, 2);
      for (let i = from; i < to; i++) out[i] = a[i]! + b[i]!;
    },
    sub(arrays, from, to) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      const b = f32(arrays, 2);
      for (let i = from; i < to; i++) out[i] = a[i]! - b[i]!;
    },
    lerp(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      const b = f32(arrays, 2);
      const t = params.t!;
      for (let i = from; i < to; i++) {
        const x = a[i]!;
        out[i] = x + t * (b[i]! - x);
      }
    },
    abs(arrays, from, to) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      for (let i = from; i < to; i++) out[i] = Math.abs(a[i]!);
    },
    sign(arrays, from, to) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      // Math.sign keeps NaN and maps -0 to -0, which compares equal to 0.
      for (let i = from; i < to; i++) out[i] = Math.sign(a[i]!);
    },
    clamp(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const a = f32(arrays, 1);
      const lo = params.lo!;
      const hi = params.hi!;
      for (let i = from; i < to; i++) {
        const x = a[i]!;
        out[i] = x < lo ? lo : x > hi ? hi : x;
      }
    },
    /** Σ a·b over the range in F64, in the partials' order (see sumOfPartials). */
    dot(arrays, from, to) {
      const a = f32(arrays, 0);
      const b = f32(arrays, 1);
      const p = partials.fill(0, 0, 4);
      for (let i = from; i < to; i++) p[(i - from) & 3]! += a[i]! * b[i]!;
      return sumOfPartials(p, 0);
    },
    sumSquares(arrays, from, to) {
      const a = f32(arrays, 0);
      const p = partials.fill(0, 0, 4);
      for (let i = from; i < to; i++) {
        const x = a[i]!;
        p[(i - from) & 3]! += x * x;
      }
      return sumOfPartials(p, 0);
    },
    /**
     * Histogram of |a| for top-k selection. |a| as F32 bits orders like the value, so the
     * k-th largest magnitude is found by two radix passes: params.level 0 counts the top 16
     * bits; level 1 counts the low 16 bits of the elements whose top 16 bits equal params.prefix.
     * NaNs are left out.
     */
    magnitudeHistogram(arrays, from, to, params) {
      const a = f32(arrays, 0);
      const bits = new Uint32Array(a.buffer, a.byteOffset, a.length);
      const hist = new Uint32Array(65536);
      if (params.level === 0) {
        for (let i = from; i < to; i++) {
          const m = bits[i]! & 0x7fffffff;
          if (m <= 0x7f800000) hist[m >>> 16]!++;
        }
      } else {
        const prefix = params.prefix!;
        for (let i = from; i < to; i++) {
          const m = bits[i]! & 0x7fffffff;
          if (m >>> 16 === prefix) hist[m & 0xffff]!++;
        }
      }
      return hist;
    },
    /**
     * TIES statistics, arrays = [base, x, hist]: adds |fround(x − base)|, as F32 bits, to hist. Unlike
     * magnitudeHistogram, NaN is counted (its bits lie above +Inf), as TIES's selection does.
     * params.level 0 counts the top 16 bits; level 1 the low 16 bits of those whose top 16 bits
     * equal params.prefix.
     */
    taskVectorHistogram(arrays, from, to, params) {
      const base = f32(arrays, 0);
      const x = f32(arrays, 1);
      // This range's own 65536 bins (the caller zeroes them and sums the ranges).
      const hist = arrays[2] as Uint32Array;
      // δ of a block as F32, then its bits (two simple loops run faster than one through a scalar).
      deltaBlock ??= new Float32Array(FUSED_BLOCK);
      const f = deltaBlock;
      const bits = new Uint32Array(f.buffer);
      const level = params.level;
      const prefix = params.prefix!;
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const len = Math.min(to, start + FUSED_BLOCK) - start;
        for (let j = 0; j < len; j++) f[j] = x[start + j]! - base[start + j]!;
        if (level === 0) for (let j = 0; j < len; j++) hist[(bits[j]! & 0x7fffffff) >>> 16]!++;
        else
          for (let j = 0; j < len; j++) {
            const m = bits[j]! & 0x7fffffff;
            if (m >>> 16 === prefix) hist[m & 0xffff]!++;
          }
      }
      return undefined;
    },
    /**
     * TIES's window, arrays = [base, x, into]: of |fround(x − base)| as F32 bits (NaN counted
     * above +Inf), counts those above params.hi and writes those in [params.lo, params.hi] to
     * into[0…] in index order while it has room. Returns [above, in the window].
     */
    taskVectorWindow(arrays, from, to, params) {
      const base = f32(arrays, 0);
      const x = f32(arrays, 1);
      const into = arrays[2] as Uint32Array;
      const lo = params.lo!;
      const hi = params.hi!;
      let above = 0;
      let inside = 0;
      for (let i = from; i < to; i++) {
        scalar32[0] = x[i]! - base[i]!;
        const m = scalarBits[0]! & 0x7fffffff;
        if (m > hi) above++;
        else if (m >= lo) {
          if (inside < into.length) into[inside] = m;
          inside++;
        }
      }
      return [above, inside];
    },
    /**
     * arrays = [out, base, x1, …, xm] (out unused: the same arrays as tiesMerge, so the same
     * ranges), params.cK: per task vector, how many elements have
     * |fround(xK − base)| exactly equal to cK (TIES's cut), so ranges split across threads know
     * how many cut-equal elements lie before them. Returns the m counts. (A count at or above
     * params.lK, when given, is all the caller needs; this reference always counts everything.)
     */
    countAtMagnitude(arrays, from, to, params) {
      const base = f32(arrays, 1);
      const m = arrays.length - 2;
      const counts: number[] = [];
      for (let k = 0; k < m; k++) {
        const x = f32(arrays, k + 2);
        const cut = params[`c${k}`]!;
        let count = 0;
        if (cut >= 0) for (let i = from; i < to; i++) if (Math.abs(Math.fround(x[i]! - base[i]!)) === cut) count++;
        counts.push(count);
      }
      return counts;
    },
    /**
     * TIES merge pass, arrays = [out, base, x1, …, xm]; per task vector K params.wK (weight), cK
     * (the cut magnitude: kept when above it; −1 keeps all, Infinity none) and qK (how many
     * elements equal to the cut this range keeps, the first ones in index order). Trim, sign
     * election from Σ wᵢδᵢ (+1 at 0), disjoint weighted mean, out = base + λ·mean, in F32 with
     * the weights and λ rounded to F32, each operation in mergekit's order: wᵢδᵢ, the sums in
     * task-vector order from +0, the quotient, λ·mean, base + it. (fround of an F64 +, −, × or ÷
     * of two F32 values is the F32 operation's result: 53 ≥ 2·24 + 2 bits.) Returns how many
     * cut-equal elements were kept per task vector.
     */
    tiesMerge(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const base = f32(arrays, 1);
      const m = arrays.length - 2;
      const lambda = Math.fround(params.lambda!);
      const xs: Float32Array[] = [];
      const w = new Float64Array(m);
      const cut = new Float64Array(m);
      const quota = new Float64Array(m);
      const kept = new Float64Array(m);
      const wds = new Float64Array(m);
      for (let k = 0; k < m; k++) {
        xs.push(f32(arrays, k + 2));
        w[k] = Math.fround(params[`w${k}`]!);
        cut[k] = params[`c${k}`]!;
        quota[k] = params[`q${k}`]!;
      }
      if (m === 2 && w[0]! + w[1]! !== 0) {
        // Three models (the common case) without data-dependent branches, which on random data
        // mispredict about half the time and cost more than the arithmetic. Dropping multiplies
        // by 0 and agreement is 0/1 arithmetic; this gives the loop below's bits because a
        // dropped or disagreeing term only ever adds ±0 to a sum that starts at +0, and with
        // finite products wᵢδᵢ and weights whose sum is not 0, "no agreeing delta" is exactly
        // den = 0 with num = +0. Elements with a non-finite delta or product take the two-term
        // steps below.
        const x1 = xs[0]!;
        const x2 = xs[1]!;
        const [w1, w2] = [w[0]!, w[1]!];
        const [c1, c2] = [cut[0]!, cut[1]!];
        const [q1, q2] = [quota[0]!, quota[1]!];
        let k1 = 0;
        let k2 = 0;
        for (let e = from; e < to; e++) {
          const b = base[e]!;
          let d1 = Math.fround(x1[e]! - b);
          let d2 = Math.fround(x2[e]! - b);
          const a1 = Math.abs(d1);
          const a2 = Math.abs(d2);
          if (a1 <= 3.4028234663852886e38 && a2 <= 3.4028234663852886e38) {
            let g1 = +(a1 > c1);
            let g2 = +(a2 > c2);
            // Equal to the cut: rare, so this branch predicts well.
            if (a1 === c1 && k1 < q1) {
              k1++;
              g1 = 1;
            }
            if (a2 === c2 && k2 < q2) {
              k2++;
              g2 = 1;
            }
            d1 *= g1;
            d2 *= g2;
          } else {
            if (!(a1 > c1)) {
              if (a1 === c1 && k1 < q1) k1++;
              else d1 = 0;
            }
            if (!(a2 > c2)) {
              if (a2 === c2 && k2 < q2) k2++;
              else d2 = 0;
            }
          }
          const wd1 = Math.fround(w1 * d1);
          const wd2 = Math.fround(w2 * d2);
          // Rounding the F64 sum of two F32s keeps its sign and whether it is 0, so the
          // election needs no fround.
          const positive = wd1 + wd2 >= 0;
          if (Math.abs(wd1) <= 3.4028234663852886e38 && Math.abs(wd2) <= 3.4028234663852886e38) {
            const p = +positive;
            const n = p ^ 1;
            const t1 = (p & +(wd1 > 0)) | (n & +(wd1 < 0));
            const t2 = (p & +(wd2 > 0)) | (n & +(wd2 < 0));
            const num = Math.fround(0 + wd1 * t1 + wd2 * t2);
            const den = Math.fround(0 + w1 * t1 + w2 * t2);
            out[e] = b + Math.fround(lambda * Math.fround(num / (den + +(den === 0))));
            continue;
          }
          let num = 0;
          let den = 0;
          if (positive ? wd1 > 0 : wd1 < 0) {
            num = wd1;
            den = w1;
          }
          if (positive ? wd2 > 0 : wd2 < 0) {
            num = Math.fround(num + wd2);
            den = Math.fround(den + w2);
          }
          out[e] = b + Math.fround(lambda * (den === 0 ? 0 : Math.fround(num / den)));
        }
        return [k1, k2];
      }
      for (let e = from; e < to; e++) {
        const b = base[e]!;
        let sum = 0;
        for (let k = 0; k < m; k++) {
          let d = Math.fround(xs[k]![e]! - b);
          const a = Math.abs(d);
          if (!(a > cut[k]!)) {
            if (a === cut[k]! && kept[k]! < quota[k]!) kept[k]!++;
            else d = 0;
          }
          const wd = Math.fround(w[k]! * d);
          wds[k] = wd;
          sum = Math.fround(sum + wd);
        }
        const positive = sum >= 0;
        let num = 0;
        let den = 0;
        for (let k = 0; k < m; k++) {
          const wd = wds[k]!;
          if (positive ? wd > 0 : wd < 0) {
            num = Math.fround(num + wd);
            den = Math.fround(den + w[k]!);
          }
        }
        out[e] = b + Math.fround(lambda * (den === 0 ? 0 : Math.fround(num / den)));
      }
      return Array.from(kept);
    },
    // TIES on encoded inputs (any dtype; params.db the base's code, params.dK task vector K's):
    // blocks decoded into per-thread F32 scratch, then the F32 ops above on the block, so the
    // results are theirs bit for bit without whole F32 copies of the inputs.
    /** taskVectorHistogram of the decoded values, arrays = [baseBytes, xBytes, hist], params.db/dx. */
    taskVectorHistogramEncoded(arrays, from, to, params) {
      const [b, x] = f32Blocks(2) as [Float32Array, Float32Array];
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const end = Math.min(to, start + FUSED_BLOCK);
        decodeBlock(arrays[0]!, params.db!, b, start, end);
        decodeBlock(arrays[1]!, params.dx!, x, start, end);
        ops.taskVectorHistogram!([b, x, arrays[2]!], 0, end - start, params);
      }
      return undefined;
    },
    /** taskVectorWindow of the decoded values, arrays = [baseBytes, xBytes, into], params.db/dx. */
    taskVectorWindowEncoded(arrays, from, to, params) {
      const [b, x] = f32Blocks(2) as [Float32Array, Float32Array];
      const into = arrays[2] as Uint32Array;
      let above = 0;
      let inside = 0;
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const end = Math.min(to, start + FUSED_BLOCK);
        decodeBlock(arrays[0]!, params.db!, b, start, end);
        decodeBlock(arrays[1]!, params.dx!, x, start, end);
        const [a, w] = ops.taskVectorWindow!([b, x, into.subarray(Math.min(inside, into.length))], 0, end - start, params) as [number, number];
        above += a;
        inside += w;
      }
      return [above, inside];
    },
    /**
     * taskVectorWindowEncoded of m task vectors over one base, arrays = [baseBytes, x1Bytes, …,
     * xmBytes, into1, …, intom], params.db, dK, loK, hiK: returns [above1, inWindow1, …].
     */
    taskVectorWindowsEncoded(arrays, from, to, params) {
      const m = (arrays.length - 1) / 2;
      return Array.from({ length: m }, (_, k) =>
        ops.taskVectorWindowEncoded!([arrays[0]!, arrays[k + 1]!, arrays[m + 1 + k]!], from, to, { db: params.db!, dx: params[`d${k}`]!, lo: params[`lo${k}`]!, hi: params[`hi${k}`]! }),
      ).flat() as number[];
    },
    /** countAtMagnitude of the decoded values, arrays = [outBytes, baseBytes, x1Bytes, …] (out unused). */
    countAtMagnitudeEncoded(arrays, from, to, params) {
      const m = arrays.length - 2;
      const blocks = f32Blocks(m + 1);
      const counts = new Array<number>(m).fill(0);
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const end = Math.min(to, start + FUSED_BLOCK);
        decodeBlock(arrays[1]!, params.db!, blocks[0]!, start, end);
        for (let k = 0; k < m; k++) decodeBlock(arrays[k + 2]!, params[`d${k}`]!, blocks[k + 1]!, start, end);
        const part = ops.countAtMagnitude!([blocks[0]!, ...blocks], 0, end - start, params) as number[];
        for (let k = 0; k < m; k++) counts[k]! += part[k]!;
      }
      return counts;
    },
    /**
     * tiesMerge of the decoded values encoded into params.od, arrays = [outBytes, baseBytes,
     * x1Bytes, …]: block by block, each block's quotas being what the blocks before it left.
     */
    tiesMergeEncoded(arrays, from, to, params) {
      const m = arrays.length - 2;
      const blocks = f32Blocks(m + 2);
      const out = blocks[m + 1]!;
      const p = { ...params };
      const kept = new Array<number>(m).fill(0);
      const od = params.od!;
      const outSize = codecs.ELEMENT_SIZE[od]!;
      const outBytes = arrays[0] as Uint8Array;
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const end = Math.min(to, start + FUSED_BLOCK);
        decodeBlock(arrays[1]!, params.db!, blocks[0]!, start, end);
        for (let k = 0; k < m; k++) decodeBlock(arrays[k + 2]!, params[`d${k}`]!, blocks[k + 1]!, start, end);
        const part = ops.tiesMerge!([out, ...blocks.slice(0, m + 1)], 0, end - start, p) as number[];
        for (let k = 0; k < m; k++) {
          kept[k]! += part[k]!;
          p[`q${k}`]! -= part[k]!;
        }
        codecs.encodeRange(out, od, outBytes.subarray(start * outSize, end * outSize), 0, end - start);
      }
      return kept;
    },
    /**
     * Consensus merge (inverse-distance weighting), arrays = [out, x1, …, xn], params.exponent (an
     * integer E ≥ 0). Per element, in F64: sᵢ = Σ_{j ≠ i} |xᵢ − xⱼ| from +0 in input order (n
     * times the Python tool's mean distance, whose j = i term is 0 for finite values); the
     * weights are all 1 when E = 0 or max s − min s < n·1e-10 (the mean distances agree within
     * 1e-10), else ((max s − sᵢ)·r)^E by consensusPower, r = 1 / (max s − min s): the Python
     * tool's (1 − (sᵢ − min s)/(max s − min s))^E without its cancellation, and exactly 0 for the
     * farthest value. The result is Σ xᵢwᵢ / Σ wᵢ, both sums in input order from the first term.
     * A NaN or ±Inf among the values never gives a finite result. The WebAssembly kernel
     * (consensusF32) does the same operations in the same order.
     */
    consensus(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const n = arrays.length - 1;
      const exponent = params.exponent!;
      const flatBelow = n * 1e-10;
      const xs: Float32Array[] = [];
      for (let k = 0; k < n; k++) xs.push(f32(arrays, k + 1));
      const values = new Float64Array(n);
      const sums = new Float64Array(n);
      const weightOf = (s: number, max: number, r: number, flat: boolean): number => (flat ? 1 : consensusPower((max - s) * r, exponent));
      for (let e = from; e < to; e++) {
        for (let i = 0; i < n; i++) values[i] = xs[i]![e]!;
        let min = Infinity;
        let max = -Infinity;
        for (let i = 0; i < n; i++) {
          const v = values[i]!;
          let s = 0;
          for (let j = 0; j < n; j++) if (j !== i) s += Math.abs(v - values[j]!);
          sums[i] = s;
          if (s < min) min = s;
          if (s > max) max = s;
        }
        const spread = max - min;
        const flat = exponent === 0 || spread < flatBelow;
        const r = 1 / spread;
        const w0 = weightOf(sums[0]!, max, r, flat);
        let acc = values[0]! * w0;
        let total = w0;
        for (let i = 1; i < n; i++) {
          const w = weightOf(sums[i]!, max, r, flat);
          acc += values[i]! * w;
          total += w;
        }
        out[e] = acc / total;
      }
    },
    /**
     * consensus over encoded inputs, arrays = [outBytes, x1Bytes, …, xnBytes], params.exponent,
     * d0 … d(n−1) (the inputs' dtype codes) and od (the output's): decode + consensus + encode,
     * a block at a time through this thread's F32 blocks.
     */
    consensusEncoded(arrays, from, to, params) {
      const n = arrays.length - 1;
      const blocks = f32Blocks(n + 1);
      const out = blocks[n]!;
      const od = params.od!;
      const outSize = codecs.ELEMENT_SIZE[od]!;
      const outBytes = arrays[0] as Uint8Array;
      const blockArrays = [out, ...blocks.slice(0, n)];
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const end = Math.min(to, start + FUSED_BLOCK);
        for (let k = 0; k < n; k++) decodeBlock(arrays[k + 1]!, params[`d${k}`]!, blocks[k]!, start, end);
        ops.consensus!(blockArrays, 0, end - start, params);
        codecs.encodeRange(out, od, outBytes.subarray(start * outSize, end * outSize), 0, end - start);
      }
    },
    /**
     * DARE's drop step, arrays = [x, base]: x[e] becomes 0 where draw params.offset + e of stream
     * params.seed is below params.threshold (⌈p·2^32⌉), else (x[e] − base[e]) / params.density
     * (dropDrawn's F32 arithmetic).
     * Every draw stands alone (counterDrawsModule), so any range runs on any thread.
     */
    dareDrop(arrays, from, to, params) {
      dropDrawn(f32(arrays, 0), f32(arrays, 1), from, to - from, params.seed!, params.offset! + from, params.threshold!, Math.fround(params.density!));
    },
    /**
     * DARE on encoded inputs, arrays = [outBytes, baseBytes, x1Bytes, …, xmBytes], params.db/dK/od
     * the dtype codes, params.sK the task vectors' stream seeds, params.offset the key's index of
     * element 0, params.threshold and params.density (as dareDrop), and combineTaskVectors' wK,
     * lambda, elect, divisor: block by block, the bytes of decode + dareDrop + combineTaskVectors
     * + encode.
     */
    dareMergeEncoded(arrays, from, to, params) {
      const m = arrays.length - 2;
      const blocks = f32Blocks(m + 2);
      const out = blocks[m + 1]!;
      const base = blocks[0]!;
      const od = params.od!;
      const outSize = codecs.ELEMENT_SIZE[od]!;
      const outBytes = arrays[0] as Uint8Array;
      const density = Math.fround(params.density!);
      for (let start = from; start < to; start += FUSED_BLOCK) {
        const end = Math.min(to, start + FUSED_BLOCK);
        decodeBlock(arrays[1]!, params.db!, base, start, end);
        for (let k = 0; k < m; k++) {
          const x = blocks[k + 1]!;
          decodeBlock(arrays[k + 2]!, params[`d${k}`]!, x, start, end);
          dropDrawn(x, base, 0, end - start, params[`s${k}`]!, params.offset! + start, params.threshold!, density);
        }
        ops.combineTaskVectors!([out, ...blocks.slice(0, m + 1)], 0, end - start, params);
        codecs.encodeRange(out, od, outBytes.subarray(start * outSize, end * outSize), 0, end - start);
      }
    },
    /**
     * arrays = [out, base, δ1, …, δm]; params.wK, params.lambda, params.elect (1: sign-elected
     * disjoint mean, 0: Σ wᵢδᵢ / params.divisor). out = base + λ·mean (merge-engine's
     * combineTaskVectors, element for element): in F32 with the weights, λ and the divisor
     * rounded to F32, each step in mergekit's order (see tiesMerge; fround of an F64 operation on
     * F32 values is the F32 operation's result).
     */
    combineTaskVectors(arrays, from, to, params) {
      const out = f32(arrays, 0);
      const base = f32(arrays, 1);
      const m = arrays.length - 2;
      const lambda = Math.fround(params.lambda!);
      const divisor = Math.fround(params.divisor!);
      const elect = params.elect === 1;
      const ds: Float32Array[] = [];
      const w: number[] = [];
      for (let k = 0; k < m; k++) {
        ds.push(f32(arrays, k + 2));
        w.push(Math.fround(params[`w${k}`]!));
      }
      if (m === 2) {
        // Three models unrolled: the same operations in the same order.
        const d1 = ds[0]!;
        const d2 = ds[1]!;
        const w1 = w[0]!;
        const w2 = w[1]!;
        for (let e = from; e < to; e++) {
          const wd1 = Math.fround(w1 * d1[e]!);
          const wd2 = Math.fround(w2 * d2[e]!);
          // 0 + wd1 is exact: one rounding.
          const sum = Math.fround(0 + wd1 + wd2);
          let mean: number;
          if (elect) {
            const positive = sum >= 0;
            let num = 0;
            let den = 0;
            if (positive ? wd1 > 0 : wd1 < 0) {
              num = wd1;
              den = w1;
            }
            if (positive ? wd2 > 0 : wd2 < 0) {
              num = Math.fround(num + wd2);
              den = Math.fround(den + w2);
            }
            mean = den === 0 ? 0 : Math.fround(num / den);
          } else mean = Math.fround(sum / divisor);
          out[e] = base[e]! + Math.fround(lambda * mean);
        }
        return;
      }
      for (let e = from; e < to; e++) {
        let sum = 0;
        for (let i = 0; i < m; i++) sum = Math.fround(sum + Math.fround(w[i]! * ds[i]![e]!));
        let mean: number;
        if (elect) {
          const positive = sum >= 0;
          let num = 0;
          let den = 0;
          for (let i = 0; i < m; i++) {
            const wd = Math.fround(w[i]! * ds[i]![e]!);
            if (positive ? wd > 0 : wd < 0) {
              num = Math.fround(num + wd);
              den = Math.fround(den + w[i]!);
            }
          }
          mean = den === 0 ? 0 : Math.fround(num / den);
        } else mean = Math.fround(sum / divisor);
        out[e] = base[e]! + Math.fround(lambda * mean);
      }
    },
    /**
     * arrays = [aBytes, bBytes], params.d0/d1 their dtype codes: dotAndNorms of the decoded
     * values, bit for bit (same order, same F64 sums), without decoding into F32 arrays first.
     */
    dotAndNormsEncoded(arrays, from, to, params) {
      const da = params.d0!;
      const db = params.d1!;
      // Σ a·b, Σ a², Σ b²: four partials each (see sumOfPartials).
      partials.fill(0);
      if ((da === 2 || da === 3) && (db === 2 || db === 3)) {
        // 16-bit codes: every value from a 65536-entry table (BF16's is its code << 16).
        f16Table ??= buildF16Table();
        bf16Table ??= buildBF16Table();
        const ta = da === 2 ? f16Table : bf16Table;
        const tb = db === 2 ? f16Table : bf16Table;
        const u16 = (v: ArrayBufferView) => new Uint16Array(v.buffer, v.byteOffset, v.byteLength >>> 1);
        const ca = u16(arrays[0]!);
        const cb = u16(arrays[1]!);
        for (let i = from; i < to; i++) addDotAndNorms((i - from) & 3, ta[ca[i]!]!, tb[cb[i]!]!);
        return dotAndNormsOfPartials();
      }
      const [xa, xb] = f32Blocks(2) as [Float32Array, Float32Array];
      for (let b = from; b < to; b += FUSED_BLOCK) {
        const e = Math.min(to, b + FUSED_BLOCK);
        decodeBlock(arrays[0]!, da, xa, b, e);
        decodeBlock(arrays[1]!, db, xb, b, e);
        for (let i = 0; i < e - b; i++) addDotAndNorms((b + i - from) & 3, xa[i]!, xb[i]!);
      }
      return dotAndNormsOfPartials();
    },
    /**
     * Slerp statistics in one read, arrays = [a, b]: returns [Σ a·b, Σ a², Σ b²] over the range,
     * each in F64 in the partials' order, like dot and sumSquares.
     */
    dotAndNorms(arrays, from, to) {
      const a = f32(arrays, 0);
      const b = f32(arrays, 1);
      partials.fill(0);
      for (let i = from; i < to; i++) addDotAndNorms((i - from) & 3, a[i]!, b[i]!);
      return dotAndNormsOfPartials();
    },
    /**
     * TIES's cut among the magnitudes a window pass listed, arrays = [values] (F32 bits, all in
     * [params.lo, params.hi]), values[from…to): the params.need-th largest (1 ≤ need ≤ to − from),
     * and how many equal to it are kept (need minus those above it). The values are binned by
     * their offset from lo, shifted so that at most 65536 bins cover the window; within the cut's
     * bin, when it spans several bit patterns, its values are sorted. Linear in the list.
     */
    cutInList(arrays, from, to, params): [threshold: number, atThreshold: number] {
      const values = arrays[0] as Uint32Array;
      const { lo, hi, need } = params as { lo: number; hi: number; need: number };
      const histogram = (cutBins ??= new Uint32Array(65536));
      const shift = Math.max(0, 16 - Math.clz32(hi - lo));
      const last = (hi - lo) >>> shift;
      binValues(values, from, to, lo, shift, histogram);
      const [bin, count] = binOfRank(histogram, last, need);
      const inBinCount = histogram[bin]!;
      histogram.fill(0, 0, last + 1);
      if (shift === 0) return [lo + bin, need - count];
      // One slot more than the bin holds: valuesInBin writes every value before it decides.
      const inBin = new Uint32Array(inBinCount + 1);
      valuesInBin(values, from, to, lo, shift, bin, inBin);
      inBin.subarray(0, inBinCount).sort();
      const threshold = inBin[inBinCount - (need - count)]!;
      let greater = 0;
      while (inBin[inBinCount - 1 - greater]! > threshold) greater++;
      return [threshold, need - count - greater];
    },
    /** binOfRank of arrays[0] (bins, u32) from bin to − 1 down (params.need): [bin, above]. */
    binOfRank(arrays, _from, to, params): [bin: number, above: number] {
      return binOfRank(arrays[0] as Uint32Array, to - 1, params.need!);
    },
    /** How many of values[from…to) (arrays = [values], u32) equal params.value. */
    countEqual(arrays, from, to, params): number {
      const values = arrays[0] as Uint32Array;
      const value = params.value!;
      let n = 0;
      for (let i = from; i < to; i++) n += values[i] === value ? 1 : 0;
      return n;
    },
    /**
     * LoRA bake rows: for rows i in [from, to) of ΔW = up[rows×rank] · down[rank×cols],
     * w[(rowOffset + i)·cols + j] += factor · ΔW[i, j], every step rounded to F32 in the order of
     * linear-algebra's matmulF32 (p ascending) so results do not depend on the thread split.
     */
    addLowRankProduct(arrays, from, to, params) {
      const w = f32(arrays, 0);
      const up = f32(arrays, 1);
      const down = f32(arrays, 2);
      const rank = params.rank!;
      const cols = params.cols!;
      const factor = params.factor!;
      const rowOffset = params.rowOffset!;
      const row = new Float32Array(cols);
      for (let i = from; i < to; i++) {
        row.fill(0);
        for (let p = 0; p < rank; p++) {
          const av = up[i * rank + p]!;
          if (av === 0) continue;
          const bp = p * cols;
          for (let j = 0; j < cols; j++) row[j] = Math.fround(row[j]! + Math.fround(av * down[bp + j]!));
        }
        const base = (rowOffset + i) * cols;
        for (let j = 0; j < cols; j++) w[base + j] = Math.fround(w[base + j]! + Math.fround(factor * row[j]!));
      }
      return undefined;
    },
  };

  return ops;
}

export type KernelOps = ReturnType<typeof kernelOpsModule>;
