import type { FloatCodecs } from "./float-codecs-module.js";

/**
 * The elementwise kernels, as range operations `op(arrays, from, to, params)` that the CPU
 * backend runs either inline or split by index range across worker threads.
 *
 * Like `floatCodecsModule`, this function is serialised with `toString()` into the worker
 * source, so it references only globals and its `codecs` argument.
 */
export function kernelOpsModule(codecs: FloatCodecs) {
  type Arrays = readonly ArrayBufferView[];
  type Params = Record<string, number>;
  type RangeOp = (arrays: Arrays, from: number, to: number, params: Params) => unknown;

  const f32 = (arrays: Arrays, i: number) => arrays[i] as Float32Array;

  // Per-thread scratch of the fused weighted sum (one block at a time stays in cache).
  const FUSED_BLOCK = 4096;
  let fusedIn: Float32Array | undefined;
  let fusedAcc: Float64Array | undefined;
  let fusedOut: Float32Array | undefined;

  let f16Table: Float32Array | undefined;
  const buildF16Table = () => {
    const t = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) t[i] = codecs.f32FromBits(codecs.f16BitsToF32Bits(i));
    return t;
  };
  const scalar32 = new Float32Array(1);
  const scalarBits = new Uint32Array(scalar32.buffer);

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
      fusedIn ??= new Float32Array(FUSED_BLOCK);
      fusedAcc ??= new Float64Array(FUSED_BLOCK);
      fusedOut ??= new Float32Array(FUSED_BLOCK);
      const tmp = fusedIn;
      const acc = fusedAcc;
      const out32 = fusedOut;
      const od = params.od!;
      const outSize = codecs.ELEMENT_SIZE[od]!;
      const outBytes = arrays[0] as Uint8Array;
      for (let b = from; b < to; b += FUSED_BLOCK) {
        const e = Math.min(to, b + FUSED_BLOCK);
        const len = e - b;
        for (let k = 0; k < n; k++) {
          const code = params[`d${k}`]!;
          const size = codecs.ELEMENT_SIZE[code]!;
          const w = params[`w${k}`]!;
          codecs.decodeRange((arrays[k + 1] as Uint8Array).subarray(b * size, e * size), code, tmp, 0, len);
          // weightedSum starts from +0 for three or more inputs (its n = 1, 2 paths do not).
          if (k === 0 && n >= 3) for (let i = 0; i < len; i++) acc[i] = 0 + w * tmp[i]!;
          else if (k === 0) for (let i = 0; i < len; i++) acc[i] = w * tmp[i]!;
          else for (let i = 0; i < len; i++) acc[i] = acc[i]! + w * tmp[i]!;
        }
        for (let i = 0; i < len; i++) out32[i] = acc[i]!;
        codecs.encodeRange(out32, od, outBytes.subarray(b * outSize, e * outSize), 0, len);
      }
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
    dot(arrays, from, to) {
      const a = f32(arrays, 0);
      const b = f32(arrays, 1);
      let s = 0;
      for (let i = from; i < to; i++) s += a[i]! * b[i]!;
      return s;
    },
    sumSquares(arrays, from, to) {
      const a = f32(arrays, 0);
      let s = 0;
      for (let i = from; i < to; i++) {
        const x = a[i]!;
        s += x * x;
      }
      return s;
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
