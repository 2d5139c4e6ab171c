/**
 * Float conversion code shared by the main thread and the kernel workers.
 *
 * Everything lives inside one function that references only JavaScript globals, because the
 * worker threads are started from `floatCodecsModule.toString()` (see worker-source.ts): the CLI
 * is bundled into one file and tests run TypeScript sources, so a separate worker file cannot
 * be relied on. Do not import anything into this function or call module-level helpers.
 *
 * Semantics follow PyTorch 2.13 on CPU (checked against committed reference tables):
 * - F32 → F16/BF16/F8_E5M2: round to nearest even; overflow gives ±Inf; NaN stays NaN (quiet,
 *   sign and top payload bits kept).
 * - F32 → F8_E4M3 (torch.float8_e4m3fn: no Inf, NaN = S.1111.111, max 448): round to nearest
 *   even; finite overflow and ±Inf saturate to ±448, as torch's CPU cast does; NaN → S.1111.111.
 * - Integers and BOOL decode to F32 by value (64-bit integers beyond 2^53 round twice).
 */
export function floatCodecsModule() {
  /** Integer codes of the dtypes, so workers switch on small ints. */
  const DTYPE_CODE: Record<string, number> = { F64: 0, F32: 1, F16: 2, BF16: 3, F8_E4M3: 4, F8_E5M2: 5, I64: 6, I32: 7, I16: 8, I8: 9, U64: 10, U32: 11, U16: 12, U8: 13, BOOL: 14 };
  const ELEMENT_SIZE = [8, 4, 2, 2, 1, 1, 8, 4, 2, 1, 8, 4, 2, 1, 1];

  const f32Scratch = new Float32Array(1);
  const u32Scratch = new Uint32Array(f32Scratch.buffer);

  function f32FromBits(bits: number): number {
    u32Scratch[0] = bits;
    return f32Scratch[0]!;
  }

  function bitsFromF32(value: number): number {
    f32Scratch[0] = value;
    return u32Scratch[0]!;
  }

  /**
   * Decodes a minifloat (sign bit on top, `expBits` exponent bits, `mantBits` mantissa bits,
   * IEEE-style subnormals) to F32 bits. `hasInf` false means the all-ones exponent is finite
   * except the all-ones mantissa, which is NaN (the E4M3 "fn" encoding).
   */
  function minifloatToF32Bits(code: number, expBits: number, mantBits: number, bias: number, hasInf: boolean): number {
    const sign = (code >>> (expBits + mantBits)) << 31;
    const expField = (code >>> mantBits) & ((1 << expBits) - 1);
    const mant = code & ((1 << mantBits) - 1);
    const expMax = (1 << expBits) - 1;
    if (expField === expMax && (hasInf || mant === (1 << mantBits) - 1)) {
      if (mant === 0) return (sign | 0x7f800000) >>> 0;
      // NaN: quiet bit set, payload moved to the top of the F32 mantissa.
      return (sign | 0x7fc00000 | (mant << (23 - mantBits))) >>> 0;
    }
    if (expField === 0) {
      if (mant === 0) return sign >>> 0;
      // Subnormal: normalise by shifting the mantissa up to the implicit bit.
      let e = 1 - bias + 127;
      let m = mant;
      while ((m & (1 << mantBits)) === 0) {
        m <<= 1;
        e--;
      }
      return (sign | (e << 23) | ((m & ((1 << mantBits) - 1)) << (23 - mantBits))) >>> 0;
    }
    return (sign | ((expField - bias + 127) << 23) | (mant << (23 - mantBits))) >>> 0;
  }

  /**
   * Rounds the magnitude bits of a finite non-negative F32 to a minifloat code (exponent and
   * mantissa, no sign) with round-to-nearest-even. The result may exceed the largest finite
   * code; callers map that to Inf or saturate.
   */
  function roundF32ToMinifloat(abs: number, mantBits: number, bias: number): number {
    const f32Exp = abs >>> 23;
    const e = f32Exp - 127 + bias;
    let shift = 23 - mantBits;
    let mant = abs & 0x7fffff;
    let r: number;
    if (e <= 0) {
      shift += 1 - e;
      // Below half the smallest subnormal (F32 subnormals included): rounds to zero.
      if (shift > 24 || f32Exp === 0) return 0;
      mant |= 0x800000;
      r = mant >>> shift;
    } else {
      r = (e << mantBits) | (mant >>> shift);
    }
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (r & 1) === 1)) r++;
    return r;
  }

  function f32BitsToF16Bits(bits: number): number {
    const sign = (bits >>> 16) & 0x8000;
    const abs = bits & 0x7fffffff;
    if (abs >= 0x7f800000) return abs === 0x7f800000 ? sign | 0x7c00 : sign | 0x7e00 | ((abs >>> 13) & 0x3ff);
    const r = roundF32ToMinifloat(abs, 10, 15);
    return sign | (r >= 0x7c00 ? 0x7c00 : r);
  }

  function f32BitsToBF16Bits(bits: number): number {
    if ((bits & 0x7fffffff) > 0x7f800000) return ((bits >>> 16) | 0x40) & 0xffff;
    return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
  }

  function f32BitsToE4M3Bits(bits: number): number {
    const sign = (bits >>> 24) & 0x80;
    const abs = bits & 0x7fffffff;
    if (abs > 0x7f800000) return sign | 0x7f;
    if (abs >= 0x43e00000 /* 448 */) return sign | 0x7e;
    const r = roundF32ToMinifloat(abs, 3, 7);
    return sign | (r > 0x7e ? 0x7e : r);
  }

  function f32BitsToE5M2Bits(bits: number): number {
    const sign = (bits >>> 24) & 0x80;
    const abs = bits & 0x7fffffff;
    if (abs >= 0x7f800000) return abs === 0x7f800000 ? sign | 0x7c : sign | 0x7f;
    const r = roundF32ToMinifloat(abs, 2, 15);
    return sign | (r >= 0x7c ? 0x7c : r);
  }

  // Lookup tables: F16 → F32 bits for all 65536 codes, and each F8 → F32 for all 256.
  const F16_TO_F32 = new Uint32Array(65536);
  for (let i = 0; i < 65536; i++) F16_TO_F32[i] = minifloatToF32Bits(i, 5, 10, 15, true);
  const F16_TO_F32_VALUES = new Float32Array(F16_TO_F32.buffer);
  const E4M3_TO_F32 = new Float32Array(256);
  const E5M2_TO_F32 = new Float32Array(256);
  for (let i = 0; i < 256; i++) {
    E4M3_TO_F32[i] = f32FromBits(minifloatToF32Bits(i, 4, 3, 7, false));
    E5M2_TO_F32[i] = f32FromBits(minifloatToF32Bits(i, 5, 2, 15, true));
  }

  /** A typed view of `bytes` for `code`; `bytes.byteOffset` must be a multiple of the element size. */
  function view(bytes: Uint8Array, code: number): ArrayLike<number> {
    const size = ELEMENT_SIZE[code]!;
    const length = bytes.byteLength / size;
    const buffer = bytes.buffer as ArrayBuffer;
    switch (code) {
      case 0:
        return new Float64Array(buffer, bytes.byteOffset, length);
      case 1:
        return new Float32Array(buffer, bytes.byteOffset, length);
      case 2:
      case 3:
      case 12:
        return new Uint16Array(buffer, bytes.byteOffset, length);
      case 7:
        return new Int32Array(buffer, bytes.byteOffset, length);
      case 8:
        return new Int16Array(buffer, bytes.byteOffset, length);
      case 9:
        return new Int8Array(buffer, bytes.byteOffset, length);
      case 11:
        return new Uint32Array(buffer, bytes.byteOffset, length);
      case 6:
      case 10:
        // 64-bit integers are read as (lo, hi) u32 pairs.
        return new Uint32Array(buffer, bytes.byteOffset, length * 2);
      default:
        return bytes;
    }
  }

  /** Decodes elements [from, to) of `bytes` (dtype `code`) into `out[from..to)` as F32. */
  function decodeRange(bytes: Uint8Array, code: number, out: Float32Array, from: number, to: number): void {
    if (code === 2) {
      const src = view(bytes, 2) as Uint16Array;
      const lut = F16_TO_F32_VALUES;
      for (let i = from; i < to; i++) out[i] = lut[src[i]!]!;
    } else if (code === 3) {
      const src = view(bytes, 3) as Uint16Array;
      const dst = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = from; i < to; i++) dst[i] = src[i]! << 16;
    } else if (code === 4 || code === 5) {
      const lut = code === 4 ? E4M3_TO_F32 : E5M2_TO_F32;
      for (let i = from; i < to; i++) out[i] = lut[bytes[i]!]!;
    } else if (code === 6 || code === 10) {
      const src = view(bytes, code) as Uint32Array;
      for (let i = from; i < to; i++) {
        const lo = src[2 * i]!;
        const hi = src[2 * i + 1]!;
        out[i] = code === 6 && hi >= 0x80000000 ? -((~hi >>> 0) * 4294967296 + ((~lo >>> 0) + 1)) : hi * 4294967296 + lo;
      }
    } else if (code === 14) {
      for (let i = from; i < to; i++) out[i] = bytes[i] === 0 ? 0 : 1;
    } else {
      const src = view(bytes, code);
      for (let i = from; i < to; i++) out[i] = src[i]!;
    }
  }

  /** Encodes `values[from..to)` into `bytes` (a float dtype `code`), round-to-nearest-even. */
  function encodeRange(values: Float32Array, code: number, bytes: Uint8Array, from: number, to: number): void {
    const bits = new Uint32Array(values.buffer, values.byteOffset, values.length);
    if (code === 2) {
      const dst = view(bytes, 2) as Uint16Array;
      for (let i = from; i < to; i++) {
        const x = bits[i]!;
        const abs = x & 0x7fffffff;
        // Fast path for normal F16 results: exponent in F16's normal range.
        if (abs >= 0x38800000 && abs < 0x477ff000) {
          const r = ((abs - 0x38000000) >>> 13) + (((abs & 0x1fff) + 0xfff + ((abs >>> 13) & 1)) >>> 13);
          dst[i] = ((x >>> 16) & 0x8000) | r;
        } else {
          dst[i] = f32BitsToF16Bits(x);
        }
      }
    } else if (code === 3) {
      const dst = view(bytes, 3) as Uint16Array;
      for (let i = from; i < to; i++) {
        const x = bits[i]!;
        dst[i] = (x & 0x7fffffff) > 0x7f800000 ? ((x >>> 16) | 0x40) & 0xffff : ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
      }
    } else if (code === 4) {
      for (let i = from; i < to; i++) bytes[i] = f32BitsToE4M3Bits(bits[i]!);
    } else if (code === 5) {
      for (let i = from; i < to; i++) bytes[i] = f32BitsToE5M2Bits(bits[i]!);
    } else if (code === 1) {
      (view(bytes, 1) as Float32Array).set(values.subarray(from, to), from);
    } else if (code === 0) {
      const dst = view(bytes, 0) as Float64Array;
      for (let i = from; i < to; i++) dst[i] = values[i]!;
    } else {
      throw new Error(`dtype code ${code} is not a float dtype`);
    }
  }

  // Bundlers that keep function names (esbuild keepNames) call a module-level helper, e.g.
  // `c(fn, "name")`, which does not exist inside a worker. kernelWorkerSource finds the helper's
  // name from the call wrapped around this probe and defines it in the worker.
  function kernelNameProbe() {}

  return {
    kernelNameProbe,
    DTYPE_CODE,
    ELEMENT_SIZE,
    f32FromBits,
    bitsFromF32,
    minifloatToF32Bits,
    f16BitsToF32Bits: (code: number) => F16_TO_F32[code & 0xffff]!,
    f32BitsToF16Bits,
    f32BitsToBF16Bits,
    f32BitsToE4M3Bits,
    f32BitsToE5M2Bits,
    decodeRange,
    encodeRange,
  };
}

export type FloatCodecs = ReturnType<typeof floatCodecsModule>;
