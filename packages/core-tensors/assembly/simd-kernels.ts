// WebAssembly SIMD versions of the hot float kernels (AssemblyScript, compiled by
// scripts/build-wasm-kernels.mjs into src/wasm-kernels-bytes.ts). They must give exactly the
// bits of the JavaScript kernels in src/float-codecs-module.ts and src/kernel-ops-module.ts,
// which stay the reference. Pointers and lengths come from src/wasm-kernels-module.ts, which
// copies blocks of shared memory in and out of this module's memory. Every loop handles
// 8 elements per step: callers round the count up to a multiple of 8 (scratch is padded).

// The constant vectors of the kernels, read from memory by lanes(slot). V8 (Node 20) builds a
// v128.const where it is used, with several general-register moves, and never hoists it out of
// a loop, while a load is one instruction (a bare decode loop ran twice as fast; the kernels
// 1.05-1.3x). Binaryen folds i32x4.splat(literal) into v128.const, a local set before the loop
// included, so the literals live here: one row per slot, named in its comment (the same bits
// under two names where the code reads them as two things, e.g. F32_HALF and I32_3F000000).
// Zero and all-ones stay constants (V8 builds them with one instruction).
const I32_8000: usize = 0;
const I32_7FFF: usize = 1;
const F32_2P112: usize = 2;
const I32_70000000: usize = 3;
const I32_7C00: usize = 4;
const I32_400000: usize = 5;
const I32_7BFF: usize = 6;
const I32_7FFFFFFF: usize = 7;
const I32_1: usize = 8;
const I32_38000000: usize = 9;
const I32_FFF: usize = 10;
const F32_HALF: usize = 11;
const I32_3F000000: usize = 12;
const I32_7E00: usize = 13;
const I32_3FF: usize = 14;
const I32_38800000: usize = 15;
const I32_477FF000: usize = 16;
const I32_7F800000: usize = 17;
const I32_40: usize = 18;
const I32_FFFF: usize = 19;
const I16_7FFF: usize = 20;
const I16_7BFF: usize = 21;
const I32_80: usize = 22;
const I32_7F: usize = 23;
const F32_2P120: usize = 24;
const I32_7FF00000: usize = 25;
const I32_3C000000: usize = 26;
const I32_7FFFF: usize = 27;
const I32_7E: usize = 28;
const F32_2P14: usize = 29;
const I32_46800000: usize = 30;
const I32_3C800000: usize = 31;
const I32_FFFFF: usize = 32;
const I32_7C: usize = 33;
const F32_2P7: usize = 34;
const I32_43000000: usize = 35;
const I32_387FFFFF: usize = 36;
const I32_C8000FFF: usize = 37;
const I32_81FFFFFF: usize = 38;
const I32_8FFFFFFF: usize = 39;
const F32_MAX: usize = 40;
const I32_80000000: usize = 41;
const I16_7F7F: usize = 42;
const I32_LOWBIAS_1: usize = 43;
const I32_LOWBIAS_2: usize = 44;
const F64_1: usize = 45;
const F64_INF: usize = 46;
const F64_NEG_INF: usize = 47;
const LANE_INDEX: usize = 48;
const I32_4: usize = 49;
const CONSTANTS = memory.data<u32>([
  0x00008000, 0x00008000, 0x00008000, 0x00008000, // I32_8000
  0x00007fff, 0x00007fff, 0x00007fff, 0x00007fff, // I32_7FFF
  0x77800000, 0x77800000, 0x77800000, 0x77800000, // F32_2P112
  0x70000000, 0x70000000, 0x70000000, 0x70000000, // I32_70000000
  0x00007c00, 0x00007c00, 0x00007c00, 0x00007c00, // I32_7C00
  0x00400000, 0x00400000, 0x00400000, 0x00400000, // I32_400000
  0x00007bff, 0x00007bff, 0x00007bff, 0x00007bff, // I32_7BFF
  0x7fffffff, 0x7fffffff, 0x7fffffff, 0x7fffffff, // I32_7FFFFFFF
  0x00000001, 0x00000001, 0x00000001, 0x00000001, // I32_1
  0x38000000, 0x38000000, 0x38000000, 0x38000000, // I32_38000000
  0x00000fff, 0x00000fff, 0x00000fff, 0x00000fff, // I32_FFF
  0x3f000000, 0x3f000000, 0x3f000000, 0x3f000000, // F32_HALF
  0x3f000000, 0x3f000000, 0x3f000000, 0x3f000000, // I32_3F000000
  0x00007e00, 0x00007e00, 0x00007e00, 0x00007e00, // I32_7E00
  0x000003ff, 0x000003ff, 0x000003ff, 0x000003ff, // I32_3FF
  0x38800000, 0x38800000, 0x38800000, 0x38800000, // I32_38800000
  0x477ff000, 0x477ff000, 0x477ff000, 0x477ff000, // I32_477FF000
  0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000, // I32_7F800000
  0x00000040, 0x00000040, 0x00000040, 0x00000040, // I32_40
  0x0000ffff, 0x0000ffff, 0x0000ffff, 0x0000ffff, // I32_FFFF
  0x7fff7fff, 0x7fff7fff, 0x7fff7fff, 0x7fff7fff, // I16_7FFF
  0x7bff7bff, 0x7bff7bff, 0x7bff7bff, 0x7bff7bff, // I16_7BFF
  0x00000080, 0x00000080, 0x00000080, 0x00000080, // I32_80
  0x0000007f, 0x0000007f, 0x0000007f, 0x0000007f, // I32_7F
  0x7b800000, 0x7b800000, 0x7b800000, 0x7b800000, // F32_2P120
  0x7ff00000, 0x7ff00000, 0x7ff00000, 0x7ff00000, // I32_7FF00000
  0x3c000000, 0x3c000000, 0x3c000000, 0x3c000000, // I32_3C000000
  0x0007ffff, 0x0007ffff, 0x0007ffff, 0x0007ffff, // I32_7FFFF
  0x0000007e, 0x0000007e, 0x0000007e, 0x0000007e, // I32_7E
  0x46800000, 0x46800000, 0x46800000, 0x46800000, // F32_2P14
  0x46800000, 0x46800000, 0x46800000, 0x46800000, // I32_46800000
  0x3c800000, 0x3c800000, 0x3c800000, 0x3c800000, // I32_3C800000
  0x000fffff, 0x000fffff, 0x000fffff, 0x000fffff, // I32_FFFFF
  0x0000007c, 0x0000007c, 0x0000007c, 0x0000007c, // I32_7C
  0x43000000, 0x43000000, 0x43000000, 0x43000000, // F32_2P7
  0x43000000, 0x43000000, 0x43000000, 0x43000000, // I32_43000000
  0x387fffff, 0x387fffff, 0x387fffff, 0x387fffff, // I32_387FFFFF
  0xc8000fff, 0xc8000fff, 0xc8000fff, 0xc8000fff, // I32_C8000FFF
  0x81ffffff, 0x81ffffff, 0x81ffffff, 0x81ffffff, // I32_81FFFFFF
  0x8fffffff, 0x8fffffff, 0x8fffffff, 0x8fffffff, // I32_8FFFFFFF
  0x7f7fffff, 0x7f7fffff, 0x7f7fffff, 0x7f7fffff, // F32_MAX
  0x80000000, 0x80000000, 0x80000000, 0x80000000, // I32_80000000
  0x7f7f7f7f, 0x7f7f7f7f, 0x7f7f7f7f, 0x7f7f7f7f, // I16_7F7F
  0x7feb352d, 0x7feb352d, 0x7feb352d, 0x7feb352d, // I32_LOWBIAS_1
  0x846ca68b, 0x846ca68b, 0x846ca68b, 0x846ca68b, // I32_LOWBIAS_2
  0x00000000, 0x3ff00000, 0x00000000, 0x3ff00000, // F64_1
  0x00000000, 0x7ff00000, 0x00000000, 0x7ff00000, // F64_INF
  0x00000000, 0xfff00000, 0x00000000, 0xfff00000, // F64_NEG_INF
  0x00000000, 0x00000001, 0x00000002, 0x00000003, // LANE_INDEX
  0x00000004, 0x00000004, 0x00000004, 0x00000004, // I32_4
], 16);

/** The constant vector in `slot` of CONSTANTS. */
// @ts-ignore: decorator
@inline function lanes(slot: usize): v128 {
  return v128.load(CONSTANTS + (slot << 4));
}

/** Start of the scratch area the caller may use (after any static data), 16-byte aligned. */
export function scratchBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** Four F16 codes (u32 lanes) → four F32s, exactly as minifloatToF32Bits(code, 5, 10, 15, true). */
// @ts-ignore: decorator
@inline function f16LanesToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, lanes(I32_8000)), 16);
  const em = v128.and(h, lanes(I32_7FFF));
  const shifted = i32x4.shl(em, 13);
  // Normals and subnormals: the shifted bits read as an F32 (a subnormal one for F16
  // subnormals) times 2^112 rebias the exponent exactly (WebAssembly never flushes subnormals).
  const finite = f32x4.mul(shifted, lanes(F32_2P112));
  // Inf and NaN: all-ones F32 exponent; NaN also gets the quiet bit, payload kept on top.
  const special = v128.or(v128.or(shifted, lanes(I32_70000000)), v128.and(i32x4.gt_u(em, lanes(I32_7C00)), lanes(I32_400000)));
  return v128.or(v128.bitselect(special, finite, i32x4.gt_u(em, lanes(I32_7BFF))), sign);
}

/** Four F32s (as bits) → four F16 codes in u32 lanes, round to nearest even (f32BitsToF16Bits). */
// @ts-ignore: decorator
@inline function f32LanesToF16(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 16), lanes(I32_8000));
  const abs = v128.and(x, lanes(I32_7FFFFFFF));
  // Normal F16 range: rebias the exponent, round the 13 dropped bits to nearest even.
  const lsb = v128.and(i32x4.shr_u(abs, 13), lanes(I32_1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(i32x4.sub(abs, lanes(I32_38000000)), lanes(I32_FFF)), lsb), 13);
  // Below 2^-14: adding 0.5 lets the F32 adder round to a multiple of 2^-24 (nearest even).
  const sub = i32x4.sub(f32x4.add(abs, lanes(F32_HALF)), lanes(I32_3F000000));
  // Overflow to Inf; NaN keeps the quiet bit and the top payload bits.
  const nan = v128.or(lanes(I32_7E00), v128.and(i32x4.shr_u(abs, 13), lanes(I32_3FF)));
  let r = v128.bitselect(sub, normal, i32x4.lt_u(abs, lanes(I32_38800000)));
  r = v128.bitselect(lanes(I32_7C00), r, i32x4.ge_u(abs, lanes(I32_477FF000)));
  r = v128.bitselect(nan, r, i32x4.gt_u(abs, lanes(I32_7F800000)));
  return v128.or(r, sign);
}

/** Four F32s (as bits) → four BF16 codes in u32 lanes (f32BitsToBF16Bits). */
// @ts-ignore: decorator
@inline function f32LanesToBF16(x: v128): v128 {
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(x, lanes(I32_7FFF)), v128.and(i32x4.shr_u(x, 16), lanes(I32_1))), 16);
  const nan = v128.or(i32x4.shr_u(x, 16), lanes(I32_40));
  const isNaN = i32x4.gt_u(v128.and(x, lanes(I32_7FFFFFFF)), lanes(I32_7F800000));
  return v128.and(v128.bitselect(nan, rounded, isNaN), lanes(I32_FFFF));
}

/** Four finite F16 codes (u32 lanes) → four F32s: f16LanesToF32 without its Inf/NaN case. */
// @ts-ignore: decorator
@inline function finiteF16LanesToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, lanes(I32_8000)), 16);
  return v128.or(f32x4.mul(i32x4.shl(v128.and(h, lanes(I32_7FFF)), 13), lanes(F32_2P112)), sign);
}

export function decodeF16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    if (v128.any_true(i16x8.gt_s(v128.and(h, lanes(I16_7FFF)), lanes(I16_7BFF)))) {
      v128.store(dst + (<usize>i << 2), f16LanesToF32(i32x4.extend_low_i16x8_u(h)));
      v128.store(dst + (<usize>i << 2), f16LanesToF32(i32x4.extend_high_i16x8_u(h)), 16);
    } else {
      v128.store(dst + (<usize>i << 2), finiteF16LanesToF32(i32x4.extend_low_i16x8_u(h)));
      v128.store(dst + (<usize>i << 2), finiteF16LanesToF32(i32x4.extend_high_i16x8_u(h)), 16);
    }
  }
}

export function decodeBF16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
  }
}

export function encodeF16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const lo = encodeLanes16(v128.load(src + (<usize>i << 2)), 2);
    const hi = encodeLanes16(v128.load(src + (<usize>i << 2), 16), 2);
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(lo, hi));
  }
}

export function encodeBF16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const lo = f32LanesToBF16(v128.load(src + (<usize>i << 2)));
    const hi = f32LanesToBF16(v128.load(src + (<usize>i << 2), 16));
    v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_u(lo, hi));
  }
}

// F8 codes travel as u8: 8 per step, widened to u32 lanes with load8x8_u + extend, narrowed back
// with two saturating narrows (every code fits a byte) and stored as one u64.

/** Four E4M3FN codes (u32 lanes) → four F32s, exactly as minifloatToF32Bits(code, 4, 3, 7, false). */
// @ts-ignore: decorator
@inline function e4m3LanesToF32(c: v128): v128 {
  const sign = i32x4.shl(v128.and(c, lanes(I32_80)), 24);
  const em = v128.and(c, lanes(I32_7F));
  // The 7 bits read as an F32 exponent and mantissa (an F32 subnormal for E4M3 subnormals) times
  // 2^120 rebias the exponent exactly. 0x7f (S.1111.111) is NaN: quiet, payload kept on top.
  const finite = f32x4.mul(i32x4.shl(em, 20), lanes(F32_2P120));
  const nan = lanes(I32_7FF00000);
  return v128.or(v128.bitselect(nan, finite, i32x4.eq(em, lanes(I32_7F))), sign);
}

/** Four F32s (as bits) → four E4M3FN codes in u32 lanes (f32BitsToE4M3Bits): nearest even, saturating at ±448. */
// @ts-ignore: decorator
@inline function f32LanesToE4M3(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 24), lanes(I32_80));
  const abs = v128.and(x, lanes(I32_7FFFFFFF));
  const lsb = v128.and(i32x4.shr_u(abs, 20), lanes(I32_1));
  // Normal range: rebias, round the 20 dropped bits to nearest even; 448 and above (Inf too) saturate.
  const normal = i32x4.min_u(i32x4.shr_u(i32x4.add(i32x4.add(i32x4.sub(abs, lanes(I32_3C000000)), lanes(I32_7FFFF)), lsb), 20), lanes(I32_7E));
  // Below 2^-6: adding 2^14 lets the F32 adder round to a multiple of 2^-9 (nearest even).
  const sub = i32x4.sub(f32x4.add(abs, lanes(F32_2P14)), lanes(I32_46800000));
  let r = v128.bitselect(sub, normal, i32x4.lt_u(abs, lanes(I32_3C800000)));
  r = v128.bitselect(lanes(I32_7F), r, i32x4.gt_u(abs, lanes(I32_7F800000)));
  return v128.or(r, sign);
}

/** Four F32s (as bits) → four E5M2 codes in u32 lanes (f32BitsToE5M2Bits): nearest even, overflow to ±Inf, NaN S.11111.11. */
// @ts-ignore: decorator
@inline function f32LanesToE5M2(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 24), lanes(I32_80));
  const abs = v128.and(x, lanes(I32_7FFFFFFF));
  const lsb = v128.and(i32x4.shr_u(abs, 21), lanes(I32_1));
  const normal = i32x4.min_u(i32x4.shr_u(i32x4.add(i32x4.add(i32x4.sub(abs, lanes(I32_38000000)), lanes(I32_FFFFF)), lsb), 21), lanes(I32_7C));
  // Below 2^-14: adding 2^7 rounds to a multiple of 2^-16 (nearest even).
  const sub = i32x4.sub(f32x4.add(abs, lanes(F32_2P7)), lanes(I32_43000000));
  let r = v128.bitselect(sub, normal, i32x4.lt_u(abs, lanes(I32_38800000)));
  r = v128.bitselect(lanes(I32_7F), r, i32x4.gt_u(abs, lanes(I32_7F800000)));
  return v128.or(r, sign);
}

/** Eight u32 lanes (two vectors), each holding a code below 256, stored as eight bytes. */
// @ts-ignore: decorator
@inline function storeBytes8(dst: usize, lo: v128, hi: v128): void {
  const bytes = i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_u(lo, hi), i16x8.splat(0));
  store<u64>(dst, i64x2.extract_lane(bytes, 0));
}

export function decodeE4M3(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const h = v128.load8x8_u(src + <usize>i);
    v128.store(dst + (<usize>i << 2), e4m3LanesToF32(i32x4.extend_low_i16x8_u(h)));
    v128.store(dst + (<usize>i << 2), e4m3LanesToF32(i32x4.extend_high_i16x8_u(h)), 16);
  }
}

/** E5M2 is the top byte of an F16: decode as the F16 code c << 8. */
export function decodeE5M2(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const h = i16x8.shl(v128.load8x8_u(src + <usize>i), 8);
    v128.store(dst + (<usize>i << 2), f16LanesToF32(i32x4.extend_low_i16x8_u(h)));
    v128.store(dst + (<usize>i << 2), f16LanesToF32(i32x4.extend_high_i16x8_u(h)), 16);
  }
}

export function encodeE4M3(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const lo = f32LanesToE4M3(v128.load(src + (<usize>i << 2)));
    const hi = f32LanesToE4M3(v128.load(src + (<usize>i << 2), 16));
    storeBytes8(dst + <usize>i, lo, hi);
  }
}

export function encodeE5M2(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const lo = f32LanesToE5M2(v128.load(src + (<usize>i << 2)));
    const hi = f32LanesToE5M2(v128.load(src + (<usize>i << 2), 16));
    storeBytes8(dst + <usize>i, lo, hi);
  }
}

// @ts-ignore: decorator
@inline function highHalf(v: v128): v128 {
  return i8x16.shuffle(v, v, 8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7);
}

// @ts-ignore: decorator
@inline function joinLow(a: v128, b: v128): v128 {
  return i8x16.shuffle(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
}

/** out = Σ w[k]·in[k] over n F32 inputs, accumulated in F64 in input order and rounded once to F32, like the weightedSum op (which starts from +0 when n ≥ 3). `inputs` holds n pointers (u32), `weights` n F64s. */
export function weightedSumF32(out: usize, inputs: usize, weights: usize, n: i32, len: i32): void {
  const plusZero = n >= 3;
  const w0 = f64x2.splat(load<f64>(weights));
  const in0 = <usize>load<u32>(inputs);
  for (let i = 0; i < len; i += 8) {
    let x0 = v128.load(in0 + (<usize>i << 2));
    let x1 = v128.load(in0 + (<usize>i << 2), 16);
    let a0 = f64x2.mul(w0, f64x2.promote_low_f32x4(x0));
    let a1 = f64x2.mul(w0, f64x2.promote_low_f32x4(highHalf(x0)));
    let a2 = f64x2.mul(w0, f64x2.promote_low_f32x4(x1));
    let a3 = f64x2.mul(w0, f64x2.promote_low_f32x4(highHalf(x1)));
    if (plusZero) {
      const z = f64x2.splat(0);
      a0 = f64x2.add(z, a0);
      a1 = f64x2.add(z, a1);
      a2 = f64x2.add(z, a2);
      a3 = f64x2.add(z, a3);
    }
    for (let k = 1; k < n; k++) {
      const w = f64x2.splat(load<f64>(weights + (<usize>k << 3)));
      const p = <usize>load<u32>(inputs + (<usize>k << 2));
      x0 = v128.load(p + (<usize>i << 2));
      x1 = v128.load(p + (<usize>i << 2), 16);
      a0 = f64x2.add(a0, f64x2.mul(w, f64x2.promote_low_f32x4(x0)));
      a1 = f64x2.add(a1, f64x2.mul(w, f64x2.promote_low_f32x4(highHalf(x0))));
      a2 = f64x2.add(a2, f64x2.mul(w, f64x2.promote_low_f32x4(x1)));
      a3 = f64x2.add(a3, f64x2.mul(w, f64x2.promote_low_f32x4(highHalf(x1))));
    }
    v128.store(out + (<usize>i << 2), joinLow(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1)));
    v128.store(out + (<usize>i << 2), joinLow(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3)), 16);
  }
}

// The fused weighted sum of 16-bit inputs (F16 code 2, BF16 code 3) into F16 or BF16, the
// weightedSumEncoded op: Σ w[k]·x[k] in F64 in input order (from +0 when n ≥ 3), rounded to F32,
// then to the output dtype, nearest even at each step.
//
// The fast path skips the F32 decode: a code's 15 magnitude bits, shifted into an F64's exponent
// and mantissa (F16 by 42, BF16 by 45) with its sign on top, read as y = x·2^-1008 (F16) or
// x·2^-896 (BF16), subnormal codes included. With the weight pre-scaled by the inverse power of
// two, y·w' equals x·w as real numbers, so the one F64 rounding of the product is the reference's.
// That holds while w' is finite and no product is an F64 subnormal: 2^-880 ≤ |w| ≤ 2^15 (or 0).
// Groups of eight with an Inf or NaN code, and every group when a weight is out of that range,
// take the exact slow path (decode to F32, promote). Outputs in the F16 normal range skip the
// subnormal, overflow and NaN cases of the encoder.

/** Scale of the fast path's F64 reading of a code: 2^1008 (F16) or 2^896 (BF16). */
// @ts-ignore: decorator
@inline function codeScale(code: u32): f64 {
  return reinterpret<f64>(<u64>(code == 2 ? 1023 + 1008 : 1023 + 896) << 52);
}

/** How far scaledHighWords shifts a code of dtype `code` into its F64 reading: 42 (F16) or 45 (BF16). */
// @ts-ignore: decorator
@inline function codeShift(code: u32): i32 {
  return code == 2 ? 42 : 45;
}

/** scaledHighWords's `keepHigh` for dtype `code`: the sign and the magnitude's bits of the high word. */
// @ts-ignore: decorator
@inline function codeKeep(code: u32): v128 {
  return code == 2 ? lanes(I32_81FFFFFF) : lanes(I32_8FFFFFFF);
}

/**
 * The high 32-bit words of four codes' F64 readings (as y values, see above; their low words are
 * 0): the sign-extended codes shifted by `shift` − 32 (10 or 13), bits between the sign and the
 * magnitude cleared by `keepHigh` (I32_81FFFFFF or I32_8FFFFFFF).
 */
// @ts-ignore: decorator
@inline function scaledHighWords(codes32: v128, shift: i32, keepHigh: v128): v128 {
  return v128.and(i32x4.shl(codes32, shift - 32), keepHigh);
}

/**
 * Two F64 lanes (y values) from lanes 0–1 (`high` false) or 2–3 of scaledHighWords, under zero
 * low words: an interleave, where widening each pair to 64 bits and shifting it took more
 * instructions (the 16-bit weighted sum ran about 15% faster for it).
 */
// @ts-ignore: decorator
@inline function pairOfHighWords(words: v128, high: bool): v128 {
  const zero = i32x4.splat(0);
  return high ? i8x16.shuffle(zero, words, 8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31) : i8x16.shuffle(zero, words, 0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
}

/** Eight codes of one input (u16) → two F32 vectors, exactly (the slow path). */
// @ts-ignore: decorator
@inline function decodeLanes16(h32: v128, code: u32): v128 {
  return code == 2 ? f16LanesToF32(h32) : i32x4.shl(h32, 16);
}

/** Four F32s → four codes (u32 lanes) of the output dtype; F16 takes a short path when all four are normal F16s. */
// @ts-ignore: decorator
@inline function encodeLanes16(y: v128, code: u32): v128 {
  if (code != 2) return f32LanesToBF16(y);
  const abs = v128.and(y, lanes(I32_7FFFFFFF));
  if (i32x4.all_true(v128.and(i32x4.gt_s(abs, lanes(I32_387FFFFF)), i32x4.lt_s(abs, lanes(I32_477FF000))))) {
    const lsb = v128.and(i32x4.shr_u(abs, 13), lanes(I32_1));
    const normal = i32x4.shr_u(i32x4.add(i32x4.add(abs, lanes(I32_C8000FFF)), lsb), 13);
    return v128.or(normal, v128.and(i32x4.shr_u(y, 16), lanes(I32_8000)));
  }
  return f32LanesToF16(y);
}

/** The weighted sum's running F64 sum: the first product itself for one or two inputs, else sum + product (from +0 for three or more). */
// @ts-ignore: decorator
@inline function accumulate(sum: v128, product: v128, first: bool): v128 {
  return first ? product : f64x2.add(sum, product);
}

/** The slow path for the eight elements at `i` (see above). */
function weightedSum16Group(out: usize, inputs: usize, codes: usize, weights: usize, n: i32, i: i32, outCode: u32): void {
  let a0 = f64x2.splat(0);
  let a1 = a0;
  let a2 = a0;
  let a3 = a0;
  for (let k = 0; k < n; k++) {
    const w = f64x2.splat(load<f64>(weights + (<usize>k << 3)));
    const code = load<u32>(codes + (<usize>k << 2));
    const h = v128.load(<usize>load<u32>(inputs + (<usize>k << 2)) + (<usize>i << 1));
    const x0 = decodeLanes16(i32x4.extend_low_i16x8_u(h), code);
    const x1 = decodeLanes16(i32x4.extend_high_i16x8_u(h), code);
    const p0 = f64x2.mul(w, f64x2.promote_low_f32x4(x0));
    const p1 = f64x2.mul(w, f64x2.promote_low_f32x4(highHalf(x0)));
    const p2 = f64x2.mul(w, f64x2.promote_low_f32x4(x1));
    const p3 = f64x2.mul(w, f64x2.promote_low_f32x4(highHalf(x1)));
    const first = k == 0 && n < 3;
    a0 = accumulate(a0, p0, first);
    a1 = accumulate(a1, p1, first);
    a2 = accumulate(a2, p2, first);
    a3 = accumulate(a3, p3, first);
  }
  const y0 = encodeLanes16(joinLow(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1)), outCode);
  const y1 = encodeLanes16(joinLow(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3)), outCode);
  v128.store(out + (<usize>i << 1), i16x8.narrow_i32x4_u(y0, y1));
}

/**
 * `inputs`: n pointers (u32); `codes`: n dtype codes (u32, 2 or 3); `weights`: n F64s; `scratch`:
 * 32·n bytes, 16-aligned, for the scaled weights and per-input constants. `len` is a multiple of 8.
 */
export function weightedSum16(out: usize, inputs: usize, codes: usize, weights: usize, n: i32, len: i32, outCode: u32, scratch: usize): void {
  let fast = true;
  for (let k = 0; k < n; k++) {
    const code = load<u32>(codes + (<usize>k << 2));
    const w = load<f64>(weights + (<usize>k << 3));
    const a = Math.abs(w);
    if (!(w == 0 || (a >= reinterpret<f64>(<u64>(1023 - 880) << 52) && a <= 32768))) fast = false;
    // Per input: the scaled weight (both lanes), then shift, mask and Inf/NaN limit.
    v128.store(scratch + (<usize>k << 5), f64x2.splat(w * codeScale(code)));
    store<u32>(scratch + (<usize>k << 5), codeShift(code), 16);
    store<u32>(scratch + (<usize>k << 5), code == 2 ? 0x7bff : 0x7f7f, 20);
  }
  const keep16 = lanes(I32_81FFFFFF);
  const keepBF16 = lanes(I32_8FFFFFFF);
  const magnitude = lanes(I16_7FFF);
  for (let i = 0; i < len; i += 8) {
    if (!fast) {
      weightedSum16Group(out, inputs, codes, weights, n, i, outCode);
      continue;
    }
    let a0 = f64x2.splat(0);
    let a1 = a0;
    let a2 = a0;
    let a3 = a0;
    let special = v128.xor(a0, a0);
    for (let k = 0; k < n; k++) {
      const at = scratch + (<usize>k << 5);
      const w = v128.load(at);
      const shift = load<i32>(at, 16);
      const keep = shift == 42 ? keep16 : keepBF16;
      const h = v128.load(<usize>load<u32>(inputs + (<usize>k << 2)) + (<usize>i << 1));
      special = v128.or(special, i16x8.gt_s(v128.and(h, magnitude), i16x8.splat(<i16>load<i32>(at, 20))));
      const lo = scaledHighWords(i32x4.extend_low_i16x8_s(h), shift, keep);
      const hi = scaledHighWords(i32x4.extend_high_i16x8_s(h), shift, keep);
      const p0 = f64x2.mul(w, pairOfHighWords(lo, false));
      const p1 = f64x2.mul(w, pairOfHighWords(lo, true));
      const p2 = f64x2.mul(w, pairOfHighWords(hi, false));
      const p3 = f64x2.mul(w, pairOfHighWords(hi, true));
      const first = k == 0 && n < 3;
      a0 = accumulate(a0, p0, first);
      a1 = accumulate(a1, p1, first);
      a2 = accumulate(a2, p2, first);
      a3 = accumulate(a3, p3, first);
    }
    if (v128.any_true(special)) {
      weightedSum16Group(out, inputs, codes, weights, n, i, outCode);
      continue;
    }
    const y0 = encodeLanes16(joinLow(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1)), outCode);
    const y1 = encodeLanes16(joinLow(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3)), outCode);
    v128.store(out + (<usize>i << 1), i16x8.narrow_i32x4_u(y0, y1));
  }
}

/** Whether weightedSum16's fast path holds for weight `w` (see above). */
// @ts-ignore: decorator
@inline function fastWeight(w: f64): bool {
  const a = Math.abs(w);
  return w == 0 || (a >= reinterpret<f64>(<u64>(1023 - 880) << 52) && a <= 32768);
}

/** Whether any of eight 16-bit codes (u16 lanes) is above `limit` in magnitude (Inf or NaN). */
// @ts-ignore: decorator
@inline function specialCodes(h: v128, limit: v128): v128 {
  return i16x8.gt_s(v128.and(h, lanes(I16_7FFF)), limit);
}

/**
 * weightedSum16 of two or more inputs of one dtype (`code`; the common merges): the same steps
 * with the first three inputs unrolled and every per-dtype constant in a register (about 1.6× the
 * general loop's elements per second for three inputs); inputs past the third add in a loop that
 * loads only their pointer and pre-scaled weight (at scratch + 16·k). Weights outside the fast
 * path's range run weightedSum16; groups with an Inf or NaN code its exact path, as there.
 */
export function weightedSum16Unrolled(out: usize, inputs: usize, codes: usize, weights: usize, n: i32, len: i32, outCode: u32, scratch: usize): void {
  const code = load<u32>(codes);
  for (let k = 0; k < n; k++) {
    const w = load<f64>(weights + (<usize>k << 3));
    if (!fastWeight(w)) {
      weightedSum16(out, inputs, codes, weights, n, len, outCode, scratch);
      return;
    }
    v128.store(scratch + (<usize>k << 4), f64x2.splat(w * codeScale(code)));
  }
  const three = n >= 3;
  const w0 = v128.load(scratch);
  const w1 = v128.load(scratch, 16);
  const w2 = three ? v128.load(scratch, 32) : f64x2.splat(0);
  const p0 = <usize>load<u32>(inputs);
  const p1 = <usize>load<u32>(inputs, 4);
  const p2 = three ? <usize>load<u32>(inputs, 8) : p1;
  const shift = codeShift(code);
  const keep = codeKeep(code);
  const limit = specialLimit(code);
  // From +0 for three or more inputs (the reference's sum), from the first product for two.
  const start = f64x2.splat(three ? 0 : -0);
  for (let i = 0; i < len; i += 8) {
    const at = <usize>i << 1;
    const h0 = v128.load(p0 + at);
    const h1 = v128.load(p1 + at);
    const h2 = v128.load(p2 + at);
    let special = v128.or(v128.or(specialCodes(h0, limit), specialCodes(h1, limit)), specialCodes(h2, limit));
    const l0 = scaledHighWords(i32x4.extend_low_i16x8_s(h0), shift, keep);
    const u0 = scaledHighWords(i32x4.extend_high_i16x8_s(h0), shift, keep);
    const l1 = scaledHighWords(i32x4.extend_low_i16x8_s(h1), shift, keep);
    const u1 = scaledHighWords(i32x4.extend_high_i16x8_s(h1), shift, keep);
    let a0 = f64x2.add(f64x2.add(start, f64x2.mul(w0, pairOfHighWords(l0, false))), f64x2.mul(w1, pairOfHighWords(l1, false)));
    let a1 = f64x2.add(f64x2.add(start, f64x2.mul(w0, pairOfHighWords(l0, true))), f64x2.mul(w1, pairOfHighWords(l1, true)));
    let a2 = f64x2.add(f64x2.add(start, f64x2.mul(w0, pairOfHighWords(u0, false))), f64x2.mul(w1, pairOfHighWords(u1, false)));
    let a3 = f64x2.add(f64x2.add(start, f64x2.mul(w0, pairOfHighWords(u0, true))), f64x2.mul(w1, pairOfHighWords(u1, true)));
    if (three) {
      const l2 = scaledHighWords(i32x4.extend_low_i16x8_s(h2), shift, keep);
      const u2 = scaledHighWords(i32x4.extend_high_i16x8_s(h2), shift, keep);
      a0 = f64x2.add(a0, f64x2.mul(w2, pairOfHighWords(l2, false)));
      a1 = f64x2.add(a1, f64x2.mul(w2, pairOfHighWords(l2, true)));
      a2 = f64x2.add(a2, f64x2.mul(w2, pairOfHighWords(u2, false)));
      a3 = f64x2.add(a3, f64x2.mul(w2, pairOfHighWords(u2, true)));
    }
    for (let k = 3; k < n; k++) {
      const w = v128.load(scratch + (<usize>k << 4));
      const h = v128.load(<usize>load<u32>(inputs + (<usize>k << 2)) + at);
      special = v128.or(special, specialCodes(h, limit));
      const l = scaledHighWords(i32x4.extend_low_i16x8_s(h), shift, keep);
      const u = scaledHighWords(i32x4.extend_high_i16x8_s(h), shift, keep);
      a0 = f64x2.add(a0, f64x2.mul(w, pairOfHighWords(l, false)));
      a1 = f64x2.add(a1, f64x2.mul(w, pairOfHighWords(l, true)));
      a2 = f64x2.add(a2, f64x2.mul(w, pairOfHighWords(u, false)));
      a3 = f64x2.add(a3, f64x2.mul(w, pairOfHighWords(u, true)));
    }
    if (v128.any_true(special)) {
      weightedSum16Group(out, inputs, codes, weights, n, i, outCode);
      continue;
    }
    const y0 = encodeLanes16(joinLow(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1)), outCode);
    const y1 = encodeLanes16(joinLow(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3)), outCode);
    v128.store(out + at, i16x8.narrow_i32x4_u(y0, y1));
  }
}

// TIES merge pass for two task vectors (three models), kernel-ops-module's tiesMerge bit for bit.
// `p` points at f64 [w1, w2, c1, c2, q1, q2, k1, k2, lambda]: weights, cuts, how many elements
// equal to each cut this range may keep, how many it has kept (updated), λ. The arithmetic is
// F32, weights and λ rounded to F32 (mergekit's on F32 tensors).

/** One element the way the JavaScript reference does it (cut-equal quota, NaN, ±Inf). */
// @ts-ignore: decorator
@inline function tiesElement(out: usize, base: usize, x1: usize, x2: usize, i: usize, p: usize): void {
  const b = load<f32>(base + (i << 2));
  let d1 = load<f32>(x1 + (i << 2)) - b;
  let d2 = load<f32>(x2 + (i << 2)) - b;
  const w1 = <f32>load<f64>(p);
  const w2 = <f32>load<f64>(p, 8);
  const c1 = <f32>load<f64>(p, 16);
  const c2 = <f32>load<f64>(p, 24);
  const a1 = Mathf.abs(d1);
  if (!(a1 > c1)) {
    if (a1 == c1 && load<f64>(p, 48) < load<f64>(p, 32)) store<f64>(p, load<f64>(p, 48) + 1, 48);
    else d1 = 0;
  }
  const a2 = Mathf.abs(d2);
  if (!(a2 > c2)) {
    if (a2 == c2 && load<f64>(p, 56) < load<f64>(p, 40)) store<f64>(p, load<f64>(p, 56) + 1, 56);
    else d2 = 0;
  }
  const wd1 = w1 * d1;
  const wd2 = w2 * d2;
  const positive = wd1 + wd2 >= 0;
  let num: f32 = 0;
  let den: f32 = 0;
  if (positive ? wd1 > 0 : wd1 < 0) {
    num += wd1;
    den += w1;
  }
  if (positive ? wd2 > 0 : wd2 < 0) {
    num += wd2;
    den += w2;
  }
  const mean: f32 = den == 0 ? 0 : num / den;
  store<f32>(out + (i << 2), b + <f32>load<f64>(p, 64) * mean);
}

/**
 * Four F32 lanes of the branch-free path: kept deltas d1, d2 (dropped ones are +0), base b;
 * weights and λ as F32 lanes.
 */
// @ts-ignore: decorator
@inline function tiesLanes(b: v128, d1: v128, d2: v128, w1: v128, w2: v128, lambda: v128): v128 {
  const zero = f32x4.splat(0);
  const wd1 = f32x4.mul(w1, d1);
  const wd2 = f32x4.mul(w2, d2);
  // The reference's sums start from +0. Adding +0 first changes only a −0, whose comparison with
  // 0 it leaves alone (the election), and the terms below are never −0: a term that does not
  // agree is +0 (the reference's skipped add), one that agrees is not zero. So no +0 is added.
  const positive = f32x4.ge(f32x4.add(wd1, wd2), zero);
  // A term agrees when positive ? wd > 0 : wd < 0, that is when wd, its sign flipped where the
  // election is negative, is > 0 (±0 and NaN never are): one xor and one compare per term.
  const flip = v128.andnot(lanes(I32_80000000), positive);
  const agree1 = f32x4.gt(v128.xor(wd1, flip), zero);
  const agree2 = f32x4.gt(v128.xor(wd2, flip), zero);
  const num = f32x4.add(v128.and(wd1, agree1), v128.and(wd2, agree2));
  const den = f32x4.add(v128.and(w1, agree1), v128.and(w2, agree2));
  // 0 where no delta agrees (den = 0): the quotient with its lanes cleared (andnot, one instruction).
  const mean = v128.andnot(f32x4.div(num, den), f32x4.eq(den, zero));
  return f32x4.add(b, f32x4.mul(lambda, mean));
}

/**
 * Four elements of the merge pass: base and models as F32 lanes; returns the four F32 results.
 * The kept-so-far counters at p + 48, p + 56 are read and updated here; `scratch` (64 bytes)
 * takes the lanes for the element-by-element path.
 */
// @ts-ignore: decorator
@inline function tiesGroup(b: v128, x1: v128, x2: v128, p: usize, scratch: usize, w1: v128, w2: v128, c1: v128, c2: v128, lambda: v128, finiteDeltas: bool): v128 {
  const d1 = f32x4.sub(x1, b);
  const d2 = f32x4.sub(x2, b);
  const a1 = f32x4.abs(d1);
  const a2 = f32x4.abs(d2);
  let g1 = f32x4.gt(a1, c1);
  let g2 = f32x4.gt(a2, c2);
  const e1 = f32x4.eq(a1, c1);
  const e2 = f32x4.eq(a2, c2);
  // `finiteDeltas`: the caller knows every delta is finite (finite F16 values differ by at most
  // 131008), so only cut-equal lanes leave the vector path.
  const largest = lanes(F32_MAX);
  const nonFinite = finiteDeltas ? i32x4.splat(0) : v128.not(v128.and(f32x4.le(a1, largest), f32x4.le(a2, largest)));
  if (v128.any_true(finiteDeltas ? v128.or(e1, e2) : v128.or(nonFinite, v128.or(e1, e2)))) {
    // Cut-equal magnitudes are kept while their quota lasts, in index order: the four lanes'
    // all at once when the quota covers them all or is spent. A quota that runs out inside
    // these four, and NaN/±Inf deltas, take the element-by-element path.
    const k1 = load<f64>(p, 48);
    const k2 = load<f64>(p, 56);
    const n1 = <f64>popcnt<i32>(i32x4.bitmask(e1));
    const n2 = <f64>popcnt<i32>(i32x4.bitmask(e2));
    const all1 = k1 + n1 <= load<f64>(p, 32);
    const all2 = k2 + n2 <= load<f64>(p, 40);
    if (v128.any_true(nonFinite) || !(all1 || k1 >= load<f64>(p, 32)) || !(all2 || k2 >= load<f64>(p, 40))) {
      v128.store(scratch, b);
      v128.store(scratch, x1, 16);
      v128.store(scratch, x2, 32);
      for (let j = 0; j < 4; j++) tiesElement(scratch + 48, scratch, scratch + 16, scratch + 32, <usize>j, p);
      return v128.load(scratch, 48);
    }
    if (all1) {
      g1 = v128.or(g1, e1);
      store<f64>(p, k1 + n1, 48);
    }
    if (all2) {
      g2 = v128.or(g2, e2);
      store<f64>(p, k2 + n2, 56);
    }
  }
  return tiesLanes(b, v128.and(d1, g1), v128.and(d2, g2), w1, w2, lambda);
}

/**
 * The parameters at `p` as F32 lanes at p + 144 … p + 224: w1, w2, the cuts c1, c2 and λ. The
 * kernels load them per use: held in locals, V8 spilled and reloaded them anyway, at a cost
 * (tiesMerge16 4.10 against 3.99 ns per element, measured in its F64 form).
 */
// @ts-ignore: decorator
@inline function tiesParams(p: usize): void {
  v128.store(p, f32x4.splat(<f32>load<f64>(p)), 144);
  v128.store(p, f32x4.splat(<f32>load<f64>(p, 8)), 160);
  v128.store(p, f32x4.splat(<f32>load<f64>(p, 16)), 176);
  v128.store(p, f32x4.splat(<f32>load<f64>(p, 24)), 192);
  v128.store(p, f32x4.splat(<f32>load<f64>(p, 64)), 208);
}

/** `p`: 224 bytes, the nine F64 parameters above, scratch from p + 80, and tiesParams' lanes. */
export function tiesMerge2(out: usize, base: usize, x1: usize, x2: usize, len: i32, p: usize): void {
  tiesParams(p);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, tiesGroup(v128.load(base + at), v128.load(x1 + at), v128.load(x2 + at), p, p + 80, v128.load(p, 144), v128.load(p, 160), v128.load(p, 176), v128.load(p, 192), v128.load(p, 208), false));
  }
  for (; i < len; i++) tiesElement(out, base, x1, x2, <usize>i, p);
}

/** Four 16-bit codes (u32 lanes) known finite → F32s: F16's short decode, or BF16's shift. */
// @ts-ignore: decorator
@inline function finiteLanes16(h32: v128, code: u32): v128 {
  return code == 2 ? finiteF16LanesToF32(h32) : i32x4.shl(h32, 16);
}

/**
 * tiesMerge2 on 16-bit codes (F16 2, BF16 3) into 16-bit codes (`outCode`): the decode and the
 * encode happen in registers, exactly as decoding, tiesMerge2 and encoding would.
 */
export function tiesMerge16(out: usize, base: usize, x1: usize, x2: usize, len: i32, p: usize, codeBase: u32, code1: u32, code2: u32, outCode: u32): void {
  // Groups of finite F16 codes have finite deltas (see tiesGroup).
  const allF16 = codeBase == 2 && code1 == 2 && code2 == 2;
  const limitBase = specialLimit(codeBase);
  const limit1 = specialLimit(code1);
  const limit2 = specialLimit(code2);
  tiesParams(p);
  const scratch = p + 80;
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const at = <usize>i << 1;
    const hb = v128.load(base + at);
    const h1 = v128.load(x1 + at);
    const h2 = v128.load(x2 + at);
    let y0: v128;
    let y1: v128;
    if (anySpecialOf3(hb, h1, h2, limitBase, limit1, limit2)) {
      y0 = tiesGroup(decodeLanes16(i32x4.extend_low_i16x8_u(hb), codeBase), decodeLanes16(i32x4.extend_low_i16x8_u(h1), code1), decodeLanes16(i32x4.extend_low_i16x8_u(h2), code2), p, scratch, v128.load(p, 144), v128.load(p, 160), v128.load(p, 176), v128.load(p, 192), v128.load(p, 208), false);
      y1 = tiesGroup(decodeLanes16(i32x4.extend_high_i16x8_u(hb), codeBase), decodeLanes16(i32x4.extend_high_i16x8_u(h1), code1), decodeLanes16(i32x4.extend_high_i16x8_u(h2), code2), p, scratch, v128.load(p, 144), v128.load(p, 160), v128.load(p, 176), v128.load(p, 192), v128.load(p, 208), false);
    } else {
      y0 = tiesGroup(finiteLanes16(i32x4.extend_low_i16x8_u(hb), codeBase), finiteLanes16(i32x4.extend_low_i16x8_u(h1), code1), finiteLanes16(i32x4.extend_low_i16x8_u(h2), code2), p, scratch, v128.load(p, 144), v128.load(p, 160), v128.load(p, 176), v128.load(p, 192), v128.load(p, 208), allF16);
      y1 = tiesGroup(finiteLanes16(i32x4.extend_high_i16x8_u(hb), codeBase), finiteLanes16(i32x4.extend_high_i16x8_u(h1), code1), finiteLanes16(i32x4.extend_high_i16x8_u(h2), code2), p, scratch, v128.load(p, 144), v128.load(p, 160), v128.load(p, 176), v128.load(p, 192), v128.load(p, 208), allF16);
    }
    v128.store(out + at, i16x8.narrow_i32x4_u(encodeLanes16(y0, outCode), encodeLanes16(y1, outCode)));
  }
  // The tail, one element at a time through the scratch.
  for (; i < len; i++) {
    const at = <usize>i << 1;
    store<f32>(scratch, f32x4.extract_lane(decodeLanes16(i32x4.splat(<i32>load<u16>(base + at)), codeBase), 0));
    store<f32>(scratch, f32x4.extract_lane(decodeLanes16(i32x4.splat(<i32>load<u16>(x1 + at)), code1), 0), 16);
    store<f32>(scratch, f32x4.extract_lane(decodeLanes16(i32x4.splat(<i32>load<u16>(x2 + at)), code2), 0), 32);
    tiesElement(scratch + 48, scratch, scratch + 16, scratch + 32, 0, p);
    store<u16>(out + at, <u16>i32x4.extract_lane(encodeLanes16(f32x4.splat(load<f32>(scratch, 48)), outCode), 0));
  }
}

/**
 * TIES statistics (kernel-ops-module's taskVectorHistogram): adds each |fround(x − base)|, as F32
 * bits, to `hist` (65536 u32 bins): level 0 by its top 16 bits; level 1 by its low 16 bits when
 * its top 16 bits equal `prefix`. NaN counts (its bits lie above +Inf). `range` holds two u32s,
 * the lowest and highest bin counted into so far, widened to the bins this call counts into (so
 * the caller copies and clears only those).
 */
export function tiesHistogram(hist: usize, base: usize, x: usize, len: i32, level: i32, prefix: u32, range: usize): void {
  const magnitude = lanes(I32_7FFFFFFF);
  const want = i32x4.splat(prefix);
  let lo = lanes(I32_FFFF);
  let hi = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const at = <usize>i << 2;
    const m = v128.and(f32x4.sub(v128.load(x + at), v128.load(base + at)), magnitude);
    if (level == 0) {
      const bins = binTop(hist, m);
      lo = i32x4.min_u(lo, bins);
      hi = i32x4.max_u(hi, bins);
    } else binLow(hist, m, want, range);
  }
  widenRange(range, lo, hi);
  for (; i < len; i++) binOne(hist, reinterpret<u32>(load<f32>(x + (<usize>i << 2)) - load<f32>(base + (<usize>i << 2))) & 0x7fffffff, level, prefix, range);
}

// @ts-ignore: decorator
@inline function count(hist: usize, bin: u32): void {
  const h = hist + (<usize>bin << 2);
  store<u32>(h, load<u32>(h) + 1);
}

/** count, widening the touched range at `range` (see tiesHistogram). */
// @ts-ignore: decorator
@inline function countTracked(hist: usize, bin: u32, range: usize): void {
  count(hist, bin);
  if (bin < load<u32>(range)) store<u32>(range, bin);
  if (bin > load<u32>(range, 4)) store<u32>(range, bin, 4);
}

/** Level 0 of four magnitudes (F32 bits, u32 lanes): counts their top 16 bits, which it returns. */
// @ts-ignore: decorator
@inline function binTop(hist: usize, m: v128): v128 {
  const bins = i32x4.shr_u(m, 16);
  count(hist, i32x4.extract_lane(bins, 0));
  count(hist, i32x4.extract_lane(bins, 1));
  count(hist, i32x4.extract_lane(bins, 2));
  count(hist, i32x4.extract_lane(bins, 3));
  return bins;
}

/** Level 1 of four magnitudes: the low 16 bits of those whose top 16 bits are `want`'s (most groups hold none). */
// @ts-ignore: decorator
@inline function binLow(hist: usize, m: v128, want: v128, range: usize): void {
  const hit = i32x4.eq(i32x4.shr_u(m, 16), want);
  if (!v128.any_true(hit)) return;
  if (i32x4.extract_lane(hit, 0)) countTracked(hist, i32x4.extract_lane(m, 0) & 0xffff, range);
  if (i32x4.extract_lane(hit, 1)) countTracked(hist, i32x4.extract_lane(m, 1) & 0xffff, range);
  if (i32x4.extract_lane(hit, 2)) countTracked(hist, i32x4.extract_lane(m, 2) & 0xffff, range);
  if (i32x4.extract_lane(hit, 3)) countTracked(hist, i32x4.extract_lane(m, 3) & 0xffff, range);
}

/** One magnitude at either level (the tail of a range). */
// @ts-ignore: decorator
@inline function binOne(hist: usize, m: u32, level: i32, prefix: u32, range: usize): void {
  if (level == 0) countTracked(hist, m >>> 16, range);
  else if (m >>> 16 == prefix) countTracked(hist, m & 0xffff, range);
}

/** Widens the range at `range` to the lanes' lowest of `lo` and highest of `hi`. */
// @ts-ignore: decorator
@inline function widenRange(range: usize, lo: v128, hi: v128): void {
  const l = <u32>min(min(i32x4.extract_lane(lo, 0), i32x4.extract_lane(lo, 1)), min(i32x4.extract_lane(lo, 2), i32x4.extract_lane(lo, 3)));
  const h = <u32>max(max(i32x4.extract_lane(hi, 0), i32x4.extract_lane(hi, 1)), max(i32x4.extract_lane(hi, 2), i32x4.extract_lane(hi, 3)));
  if (l < load<u32>(range)) store<u32>(range, l);
  if (h > load<u32>(range, 4)) store<u32>(range, h, 4);
}

/**
 * TIES's cut-equal count (kernel-ops-module's countAtMagnitude): how many |fround(x − base)| equal
 * `cut` (an F32 value; NaN equals nothing).
 */
export function tiesCount(base: usize, x: usize, len: i32, cut: f32): i32 {
  const c = f32x4.splat(cut);
  let lanes = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const at = <usize>i << 2;
    // Equal lanes are all ones (−1): subtracting counts them.
    lanes = i32x4.sub(lanes, f32x4.eq(f32x4.abs(f32x4.sub(v128.load(x + at), v128.load(base + at))), c));
  }
  let count = i32x4.extract_lane(lanes, 0) + i32x4.extract_lane(lanes, 1) + i32x4.extract_lane(lanes, 2) + i32x4.extract_lane(lanes, 3);
  for (; i < len; i++) if (Math.abs(<f64>(load<f32>(x + (<usize>i << 2)) - load<f32>(base + (<usize>i << 2)))) == <f64>cut) count++;
  return count;
}

// TIES statistics straight from 16-bit codes (F16 2, BF16 3): the decode happens in registers,
// so the values never go through memory as F32. Same bins and counts as decoding, then
// tiesHistogram / tiesCount.

/** |fround(x − base)| as F32 bits, four lanes, from four codes of each (u32 lanes). */
// @ts-ignore: decorator
@inline function deltaMagnitudes(hb: v128, hx: v128, codeBase: u32, codeX: u32): v128 {
  return v128.and(f32x4.sub(decodeLanes16(hx, codeX), decodeLanes16(hb, codeBase)), lanes(I32_7FFFFFFF));
}

/** deltaMagnitudes for codes known finite (no Inf or NaN among the eight codes of each input). */
// @ts-ignore: decorator
@inline function finiteDeltaMagnitudes(hb: v128, hx: v128, codeBase: u32, codeX: u32): v128 {
  const b = codeBase == 2 ? finiteF16LanesToF32(hb) : i32x4.shl(hb, 16);
  const x = codeX == 2 ? finiteF16LanesToF32(hx) : i32x4.shl(hx, 16);
  return v128.and(f32x4.sub(x, b), lanes(I32_7FFFFFFF));
}

/** Whether any of eight 16-bit codes (u16 lanes) of dtype `code` is Inf or NaN. */
// @ts-ignore: decorator
@inline function anySpecial16(h: v128, code: u32): bool {
  return v128.any_true(specialCodes(h, specialLimit(code)));
}

/** An Inf/NaN limit of 16-bit codes (u16 lanes) of dtype `code`, for specialCodes: hoisted out of the loops. */
// @ts-ignore: decorator
@inline function specialLimit(code: u32): v128 {
  return lanes(code == 2 ? I16_7BFF : I16_7F7F);
}

/** anySpecial16 of three inputs' eight codes at once (one test and branch): their limits from specialLimit. */
// @ts-ignore: decorator
@inline function anySpecialOf3(h0: v128, h1: v128, h2: v128, limit0: v128, limit1: v128, limit2: v128): bool {
  return v128.any_true(v128.or(v128.or(specialCodes(h0, limit0), specialCodes(h1, limit1)), specialCodes(h2, limit2)));
}

/** The same for the one element at `i` (the tail of a range). */
// @ts-ignore: decorator
@inline function deltaMagnitude(base: usize, x: usize, i: i32, codeBase: u32, codeX: u32): u32 {
  const hb = i32x4.splat(<i32>load<u16>(base + (<usize>i << 1)));
  const hx = i32x4.splat(<i32>load<u16>(x + (<usize>i << 1)));
  return <u32>i32x4.extract_lane(deltaMagnitudes(hb, hx, codeBase, codeX), 0);
}

/** deltaMagnitudes of elements 0–3 (`high` false) or 4–7 of eight codes of each; `special`: any Inf or NaN among them. */
// @ts-ignore: decorator
@inline function deltaMagnitudesOfHalf(hb: v128, hx: v128, high: bool, special: bool, codeBase: u32, codeX: u32): v128 {
  const b = high ? i32x4.extend_high_i16x8_u(hb) : i32x4.extend_low_i16x8_u(hb);
  const x = high ? i32x4.extend_high_i16x8_u(hx) : i32x4.extend_low_i16x8_u(hx);
  return special ? deltaMagnitudes(b, x, codeBase, codeX) : finiteDeltaMagnitudes(b, x, codeBase, codeX);
}

/** tiesHistogram of 16-bit inputs: `base` and `x` hold codes of dtype `codeBase` and `codeX`. */
export function tiesHistogram16(hist: usize, base: usize, x: usize, len: i32, level: i32, prefix: u32, range: usize, codeBase: u32, codeX: u32): void {
  const want = i32x4.splat(prefix);
  let lo = lanes(I32_FFFF);
  let hi = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const hb = v128.load(base + (<usize>i << 1));
    const hx = v128.load(x + (<usize>i << 1));
    const special = anySpecial16(hb, codeBase) || anySpecial16(hx, codeX);
    const m0 = deltaMagnitudesOfHalf(hb, hx, false, special, codeBase, codeX);
    const m1 = deltaMagnitudesOfHalf(hb, hx, true, special, codeBase, codeX);
    if (level == 0) {
      const b0 = binTop(hist, m0);
      const b1 = binTop(hist, m1);
      lo = i32x4.min_u(lo, i32x4.min_u(b0, b1));
      hi = i32x4.max_u(hi, i32x4.max_u(b0, b1));
    } else {
      binLow(hist, m0, want, range);
      binLow(hist, m1, want, range);
    }
  }
  widenRange(range, lo, hi);
  for (; i < len; i++) binOne(hist, deltaMagnitude(base, x, i, codeBase, codeX), level, prefix, range);
}

/** tiesCount of 16-bit inputs (see tiesHistogram16). */
export function tiesCount16(base: usize, x: usize, len: i32, cut: f32, codeBase: u32, codeX: u32): i32 {
  const c = i32x4.splat(reinterpret<i32>(cut));
  let lanes = i32x4.splat(0);
  let i = 0;
  // Bits equal as integers is values equal here: the magnitudes are ≥ +0 and the cut is never
  // NaN, so only a NaN magnitude could differ, and no NaN's bits equal a non-NaN cut's.
  for (; i + 8 <= len; i += 8) {
    const hb = v128.load(base + (<usize>i << 1));
    const hx = v128.load(x + (<usize>i << 1));
    if (anySpecial16(hb, codeBase) || anySpecial16(hx, codeX)) {
      lanes = i32x4.sub(lanes, i32x4.eq(deltaMagnitudes(i32x4.extend_low_i16x8_u(hb), i32x4.extend_low_i16x8_u(hx), codeBase, codeX), c));
      lanes = i32x4.sub(lanes, i32x4.eq(deltaMagnitudes(i32x4.extend_high_i16x8_u(hb), i32x4.extend_high_i16x8_u(hx), codeBase, codeX), c));
      continue;
    }
    lanes = i32x4.sub(lanes, i32x4.eq(finiteDeltaMagnitudes(i32x4.extend_low_i16x8_u(hb), i32x4.extend_low_i16x8_u(hx), codeBase, codeX), c));
    lanes = i32x4.sub(lanes, i32x4.eq(finiteDeltaMagnitudes(i32x4.extend_high_i16x8_u(hb), i32x4.extend_high_i16x8_u(hx), codeBase, codeX), c));
  }
  let n = i32x4.extract_lane(lanes, 0) + i32x4.extract_lane(lanes, 1) + i32x4.extract_lane(lanes, 2) + i32x4.extract_lane(lanes, 3);
  for (; i < len; i++) if (deltaMagnitude(base, x, i, codeBase, codeX) == reinterpret<u32>(cut)) n++;
  return n;
}

// TIES's window pass (kernel-ops-module's taskVectorWindow): one pass that finds the cut when a
// sample placed it inside [lo, hi], in place of the two histogram passes.


/**
 * i8x16.swizzle indices that move the i32 lanes named by a 4-bit mask (bit k: lane k) to the
 * front, in lane order; the other bytes read as 0 (index 0x80). Row `mask` at PACK + 16·mask.
 */
const PACK = memory.data<u32>([
  0x80808080, 0x80808080, 0x80808080, 0x80808080, // lanes none
  0x03020100, 0x80808080, 0x80808080, 0x80808080, // lanes 0
  0x07060504, 0x80808080, 0x80808080, 0x80808080, // lanes 1
  0x03020100, 0x07060504, 0x80808080, 0x80808080, // lanes 01
  0x0b0a0908, 0x80808080, 0x80808080, 0x80808080, // lanes 2
  0x03020100, 0x0b0a0908, 0x80808080, 0x80808080, // lanes 02
  0x07060504, 0x0b0a0908, 0x80808080, 0x80808080, // lanes 12
  0x03020100, 0x07060504, 0x0b0a0908, 0x80808080, // lanes 012
  0x0f0e0d0c, 0x80808080, 0x80808080, 0x80808080, // lanes 3
  0x03020100, 0x0f0e0d0c, 0x80808080, 0x80808080, // lanes 03
  0x07060504, 0x0f0e0d0c, 0x80808080, 0x80808080, // lanes 13
  0x03020100, 0x07060504, 0x0f0e0d0c, 0x80808080, // lanes 013
  0x0b0a0908, 0x0f0e0d0c, 0x80808080, 0x80808080, // lanes 23
  0x03020100, 0x0b0a0908, 0x0f0e0d0c, 0x80808080, // lanes 023
  0x07060504, 0x0b0a0908, 0x0f0e0d0c, 0x80808080, // lanes 123
  0x03020100, 0x07060504, 0x0b0a0908, 0x0f0e0d0c, // lanes 0123
]);

/**
 * Stores the lanes of `m` where `inside` is −1, in lane order, at out + 4·c; returns c plus their
 * count. One 16-byte store whatever the mask (no branch: with a few percent of the lanes inside,
 * a branch on them was mispredicted often enough to double the window pass), so `out` needs
 * room for 4 more than are kept.
 */
// @ts-ignore: decorator
@inline function packInside(m: v128, inside: v128, out: usize, c: i32): i32 {
  const mask = i32x4.bitmask(inside);
  v128.store(out + (<usize>c << 2), i8x16.swizzle(m, v128.load(PACK + (<usize>mask << 4))));
  return c + popcnt<i32>(mask);
}

/**
 * Four magnitudes (F32 bits, u32 lanes, so at most 0x7fffffff) of the window pass: the lanes
 * inside [lo, hi] given those `over` it (i32x4.gt_s(m, hi)). `below` is lo − 1 and `hi` at most
 * 0x7fffffff, so signed compares (one instruction each on x86) order the lanes as unsigned ones.
 */
// @ts-ignore: decorator
@inline function insideWindow(m: v128, below: v128, over: v128): v128 {
  return v128.andnot(i32x4.gt_s(m, below), over);
}

/** One magnitude of the window pass (the tail of a range); returns 1 when it lies above `hi`. */
// @ts-ignore: decorator
@inline function windowOne(m: u32, lo: u32, hi: u32, out: usize, count: usize): i32 {
  if (m > hi) return 1;
  if (m >= lo) {
    const c = load<i32>(count);
    store<u32>(out + (<usize>c << 2), m);
    store<i32>(count, c + 1);
  }
  return 0;
}

/** A window's bounds as insideWindow compares them (signed): just below `lo`, and `hi`, each at most 0x7fffffff. */
// @ts-ignore: decorator
@inline function belowWindow(lo: u32): v128 {
  return i32x4.splat(lo > 0x7fffffff ? 0x7fffffff : <i32>lo - 1);
}

// @ts-ignore: decorator
@inline function topOfWindow(hi: u32): v128 {
  return i32x4.splat(<i32>min(hi, 0x7fffffff));
}

/**
 * Of the |fround(x − base)| as F32 bits (NaN's lie above +Inf): how many lie above `hi` (the
 * i32 at result), and those in [lo, hi],  written at `out`, their count the i32 at
 * result + 4. `out` has room for len + 4 (packInside stores four lanes whatever it keeps).
 */
export function tiesWindow(out: usize, base: usize, x: usize, len: i32, lo: u32, hi: u32, result: usize): void {
  const magnitude = lanes(I32_7FFFFFFF);
  const lov = belowWindow(lo);
  const hiv = topOfWindow(hi);
  const count = result + 4;
  let listed = 0;
  let above = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const at = <usize>i << 2;
    const m = v128.and(f32x4.sub(v128.load(x + at), v128.load(base + at)), magnitude);
    const over = i32x4.gt_s(m, hiv);
    listed = packInside(m, insideWindow(m, lov, over), out, listed);
    above = i32x4.add(above, over);
  }
  store<i32>(count, listed);
  let n = -(i32x4.extract_lane(above, 0) + i32x4.extract_lane(above, 1) + i32x4.extract_lane(above, 2) + i32x4.extract_lane(above, 3));
  for (; i < len; i++) n += windowOne(reinterpret<u32>(load<f32>(x + (<usize>i << 2)) - load<f32>(base + (<usize>i << 2))) & 0x7fffffff, lo, hi, out, count);
  store<i32>(result, n);
}

/** tiesWindow of 16-bit inputs (see tiesHistogram16). */
export function tiesWindow16(out: usize, base: usize, x: usize, len: i32, lo: u32, hi: u32, result: usize, codeBase: u32, codeX: u32): void {
  const lov = belowWindow(lo);
  const hiv = topOfWindow(hi);
  const count = result + 4;
  let listed = 0;
  let above = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const hb = v128.load(base + (<usize>i << 1));
    const hx = v128.load(x + (<usize>i << 1));
    const special = anySpecial16(hb, codeBase) || anySpecial16(hx, codeX);
    const m0 = deltaMagnitudesOfHalf(hb, hx, false, special, codeBase, codeX);
    const m1 = deltaMagnitudesOfHalf(hb, hx, true, special, codeBase, codeX);
    const over0 = i32x4.gt_s(m0, hiv);
    const over1 = i32x4.gt_s(m1, hiv);
    listed = packInside(m0, insideWindow(m0, lov, over0), out, listed);
    listed = packInside(m1, insideWindow(m1, lov, over1), out, listed);
    above = i32x4.add(above, i32x4.add(over0, over1));
  }
  store<i32>(count, listed);
  let n = -(i32x4.extract_lane(above, 0) + i32x4.extract_lane(above, 1) + i32x4.extract_lane(above, 2) + i32x4.extract_lane(above, 3));
  for (; i < len; i++) n += windowOne(deltaMagnitude(base, x, i, codeBase, codeX), lo, hi, out, count);
  store<i32>(result, n);
}

/**
 * tiesWindow16 of two task vectors over one base (kernel-ops-module's taskVectorWindowsEncoded):
 * the base's codes read and decoded once. `w` holds, per task vector, its window's bounds as
 * tiesWindow16 uses them (lo − 1 and hi, signed) and then as given (u32 lo, hi, for the tail):
 * in memory, not as parameters, with which the loop ran 8–17% slower; then 64 bytes where the
 * signed bounds go as lanes, loaded per use (held in locals: 1.57 against 1.51 ns per element);
 * `result` gets above and listed (i32) for each, `out1`, `out2` the listed magnitudes (room for len + 4).
 */
export function tiesWindow2x16(out1: usize, out2: usize, base: usize, x1: usize, x2: usize, len: i32, w: usize, result: usize, codeBase: u32, code1: u32, code2: u32): void {
  // The signed bounds as lanes at w + 32 … w + 96, loaded per use.
  for (let k: usize = 0; k < 4; k++) v128.store(w + 32 + (k << 4), i32x4.splat(load<i32>(w + (k << 2))));
  const limitBase = specialLimit(codeBase);
  const limit1 = specialLimit(code1);
  const limit2 = specialLimit(code2);
  let count1 = 0;
  let count2 = 0;
  let above1 = i32x4.splat(0);
  let above2 = i32x4.splat(0);
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const at = <usize>i << 1;
    const hb = v128.load(base + at);
    const h1 = v128.load(x1 + at);
    const h2 = v128.load(x2 + at);
    const special = anySpecialOf3(hb, h1, h2, limitBase, limit1, limit2);
    for (let half = 0; half < 2; half++) {
      const cb = half == 0 ? i32x4.extend_low_i16x8_u(hb) : i32x4.extend_high_i16x8_u(hb);
      const c1 = half == 0 ? i32x4.extend_low_i16x8_u(h1) : i32x4.extend_high_i16x8_u(h1);
      const c2 = half == 0 ? i32x4.extend_low_i16x8_u(h2) : i32x4.extend_high_i16x8_u(h2);
      const b = special ? decodeLanes16(cb, codeBase) : finiteLanes16(cb, codeBase);
      const y1 = special ? decodeLanes16(c1, code1) : finiteLanes16(c1, code1);
      const y2 = special ? decodeLanes16(c2, code2) : finiteLanes16(c2, code2);
      const m1 = v128.and(f32x4.sub(y1, b), lanes(I32_7FFFFFFF));
      const m2 = v128.and(f32x4.sub(y2, b), lanes(I32_7FFFFFFF));
      const over1 = i32x4.gt_s(m1, v128.load(w, 48));
      const over2 = i32x4.gt_s(m2, v128.load(w, 80));
      count1 = packInside(m1, insideWindow(m1, v128.load(w, 32), over1), out1, count1);
      count2 = packInside(m2, insideWindow(m2, v128.load(w, 64), over2), out2, count2);
      above1 = i32x4.add(above1, over1);
      above2 = i32x4.add(above2, over2);
    }
  }
  store<i32>(result, count1, 4);
  store<i32>(result, count2, 12);
  let n1 = -(i32x4.extract_lane(above1, 0) + i32x4.extract_lane(above1, 1) + i32x4.extract_lane(above1, 2) + i32x4.extract_lane(above1, 3));
  let n2 = -(i32x4.extract_lane(above2, 0) + i32x4.extract_lane(above2, 1) + i32x4.extract_lane(above2, 2) + i32x4.extract_lane(above2, 3));
  for (; i < len; i++) {
    n1 += windowOne(deltaMagnitude(base, x1, i, codeBase, code1), load<u32>(w, 16), load<u32>(w, 20), out1, result + 4);
    n2 += windowOne(deltaMagnitude(base, x2, i, codeBase, code2), load<u32>(w, 24), load<u32>(w, 28), out2, result + 12);
  }
  store<i32>(result, n1);
  store<i32>(result, n2, 8);
}

// TIES's cut among a window pass's list (kernel-ops-module's cutInList): the same threshold and
// kept count as the JavaScript op, found with two levels of bins where it sorts the cut's bin.
// wasm-kernels-module runs the passes over the list in blocks (cutInListBins) and picks each
// level's bin (cutInListRank); the bins are TIES's histogram scratch, zero between ops.

/** Counts the four bins in `bins` (u32 lanes, each below 65536). */
// @ts-ignore: decorator
@inline function countFour(hist: usize, bins: v128): void {
  count(hist, i32x4.extract_lane(bins, 0));
  count(hist, i32x4.extract_lane(bins, 1));
  count(hist, i32x4.extract_lane(bins, 2));
  count(hist, i32x4.extract_lane(bins, 3));
}

/**
 * One pass of cutInList over the `n` magnitudes at `values` (F32 bits, each in the window from
 * `lo`): level 0 (`bin` −1) counts each offset from lo shifted right by `shift` (at most `last`);
 * level 1 counts the low `shift` bits of the offsets in bin `bin` (few, scattered through the
 * list: a branch per four that is rarely taken). `range` (two u32s) is widened to the bins
 * counted into. A value outside the window (against the contract) counts in bin `last`, so no
 * bin past `last` (level 0) or the low bits' mask (level 1) is ever written.
 */
export function cutInListBins(values: usize, n: i32, lo: u32, shift: u32, last: u32, bin: i32, hist: usize, range: usize): void {
  const lov = i32x4.splat(lo);
  const lastv = i32x4.splat(last);
  let i = 0;
  if (bin < 0) {
    let bottom = i32x4.splat(-1);
    let top = i32x4.splat(0);
    for (; i + 4 <= n; i += 4) {
      const bins = i32x4.min_u(i32x4.shr_u(i32x4.sub(v128.load(values + (<usize>i << 2)), lov), shift), lastv);
      countFour(hist, bins);
      bottom = i32x4.min_u(bottom, bins);
      top = i32x4.max_u(top, bins);
    }
    widenRange(range, bottom, top);
    for (; i < n; i++) countTracked(hist, min((load<u32>(values + (<usize>i << 2)) - lo) >>> shift, last), range);
    return;
  }
  const mask: u32 = (1 << shift) - 1;
  const binv = i32x4.splat(bin);
  for (; i + 4 <= n; i += 4) {
    const hit = i32x4.eq(i32x4.min_u(i32x4.shr_u(i32x4.sub(v128.load(values + (<usize>i << 2)), lov), shift), lastv), binv);
    if (!v128.any_true(hit)) continue;
    for (let j = 0; j < 4; j++) cutInListLow(load<u32>(values + (<usize>(i + j) << 2)) - lo, shift, last, <u32>bin, mask, hist, range);
  }
  for (; i < n; i++) cutInListLow(load<u32>(values + (<usize>i << 2)) - lo, shift, last, <u32>bin, mask, hist, range);
}

/** Level 1 of one offset from lo: its low bits counted when it lies in bin `bin`. */
// @ts-ignore: decorator
@inline function cutInListLow(offset: u32, shift: u32, last: u32, bin: u32, mask: u32, hist: usize, range: usize): void {
  if (min(offset >>> shift, last) == bin) countTracked(hist, offset & mask, range);
}

/**
 * The bin holding the `need`-th largest value among the bins in `range` (two u32s: the lowest and
 * highest counted into; those above are empty), and how many lie in the bins above it (the u32
 * at `above`); bin `range`'s lowest when fewer are counted. Clears those bins and resets `range`.
 */
export function cutInListRank(hist: usize, range: usize, need: u32, above: usize): u32 {
  let bottom = load<u32>(range);
  const top = load<u32>(range, 4);
  if (bottom > top) bottom = top;
  let count: u32 = 0;
  let bin = top;
  for (; bin > bottom && count + load<u32>(hist + (<usize>bin << 2)) < need; bin--) count += load<u32>(hist + (<usize>bin << 2));
  memory.fill(hist + (<usize>bottom << 2), 0, <usize>(top - bottom + 1) << 2);
  store<u32>(range, 0xffffffff);
  store<u32>(range, 0, 4);
  store<u32>(above, count);
  return bin;
}

/** How many of the `n` u32s at `values` equal `value`. */
export function countEqual(values: usize, n: i32, value: u32): i32 {
  const v = i32x4.splat(value);
  let counts = i32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) counts = i32x4.sub(counts, i32x4.eq(v128.load(values + (<usize>i << 2)), v));
  let c = i32x4.extract_lane(counts, 0) + i32x4.extract_lane(counts, 1) + i32x4.extract_lane(counts, 2) + i32x4.extract_lane(counts, 3);
  for (; i < n; i++) if (load<u32>(values + (<usize>i << 2)) == value) c++;
  return c;
}

// DARE (kernel-ops-module's dareMergeEncoded), bit for bit, its keep masks drawn in the loop.

/** lowbias32 of four u32 lanes (counter-draws-module's drawBits). */
// @ts-ignore: decorator
@inline function lowbias32Lanes(x: v128): v128 {
  x = v128.xor(x, i32x4.shr_u(x, 16));
  x = i32x4.mul(x, lanes(I32_LOWBIAS_1));
  x = v128.xor(x, i32x4.shr_u(x, 15));
  x = i32x4.mul(x, lanes(I32_LOWBIAS_2));
  return v128.xor(x, i32x4.shr_u(x, 16));
}

/** lowbias32 of one u32 (a stream's key for a 2^32 block of indices: lowbias32(seed ^ lowbias32(block))). */
function lowbias32(x: u32): u32 {
  x ^= x >>> 16;
  x *= 0x7feb352d;
  x ^= x >>> 15;
  x *= 0x846ca68b;
  return x ^ (x >>> 16);
}

/** The key of stream `seed` for the draw indices in the 2^32 block at p + 148 (see dareMerge2). */
// @ts-ignore: decorator
@inline function drawKeyLanes(seed: u32, p: usize): v128 {
  return i32x4.splat(<i32>lowbias32(seed ^ lowbias32(load<u32>(p, 148))));
}

/**
 * The draw parameters at p + 128 (see dareMerge2) as lanes at p + 160 … p + 240: each stream's
 * key, the threshold, `possible`, and the first four draw indices; returns p + 160. Loaded
 * per use, as dareParams' lanes are.
 */
// @ts-ignore: decorator
@inline function drawParams(p: usize): usize {
  v128.store(p, drawKeyLanes(load<u32>(p, 128), p), 160);
  v128.store(p, drawKeyLanes(load<u32>(p, 132), p), 176);
  v128.store(p, i32x4.splat(load<i32>(p, 140)), 192);
  v128.store(p, i32x4.splat(load<i32>(p, 144)), 208);
  v128.store(p, i32x4.add(i32x4.splat(load<i32>(p, 136)), lanes(LANE_INDEX)), 224);
  return p + 160;
}

/**
 * The keep lanes (−1) of four elements whose draw indices (mod 2^32) are `index`'s lanes, in
 * stream `stream` (0 or 1) of the draw parameters at `d` (drawParams): draw =
 * lowbias32(index ^ key) ≥ threshold, where any draw can be (`possible` −1; 0 when the
 * threshold is 2^32).
 */
// @ts-ignore: decorator
@inline function keepDrawn(index: v128, d: usize, stream: usize): v128 {
  return v128.and(i32x4.ge_u(lowbias32Lanes(v128.xor(index, v128.load(d + (stream << 4)))), v128.load(d, 32)), v128.load(d, 48));
}

/**
 * Four F32 lanes of the combine (combineTaskVectors, two task vectors), from the inputs: each
 * task vector's delta (x − b) / density where `keep` (−1), else +0 (dareDrop's), then the
 * sign-elected disjoint mean (tiesLanes, mergekit's for TIES and DARE alike) or the plain mean
 * (0 + w1·d1 + w2·d2) / divisor, as base + λ·mean; all in F32, each step in mergekit's order.
 * A dropped delta is +0 where the reference's may be ±0: both sums start from +0, which makes
 * them the same, and neither ever agrees with an elected sign. `q` holds the parameters as F32
 * lanes (dareParams), loaded per use like tiesParams'.
 */
// @ts-ignore: decorator
@inline function dareGroup(b: v128, x1: v128, x2: v128, k1: v128, k2: v128, q: usize, elect: bool): v128 {
  const density = v128.load(q, 32);
  const d1 = v128.and(f32x4.div(f32x4.sub(x1, b), density), k1);
  const d2 = v128.and(f32x4.div(f32x4.sub(x2, b), density), k2);
  if (elect) return tiesLanes(b, d1, d2, v128.load(q), v128.load(q, 16), v128.load(q, 48));
  const sum = f32x4.add(f32x4.add(f32x4.splat(0), f32x4.mul(v128.load(q), d1)), f32x4.mul(v128.load(q, 16), d2));
  return f32x4.add(b, f32x4.mul(v128.load(q, 48), f32x4.div(sum, v128.load(q, 64))));
}

/** The parameters at `p` (F64 w1, w2, density, λ, divisor, each an F32 value) as F32 lanes at p + 48 … p + 128; returns p + 48. */
// @ts-ignore: decorator
@inline function dareParams(p: usize): usize {
  for (let k: usize = 0; k < 5; k++) v128.store(p + 48 + (k << 4), f32x4.splat(<f32>load<f64>(p + (k << 3))));
  return p + 48;
}

/**
 * DARE's merge of two task vectors over F32 values: `out`, `base`, `x1`, `x2` hold `len` F32s (a
 * multiple of 8), `p` the F64s [w1, w2, density (1 − p), λ, divisor, elect (0/1)], the first five
 * F32 values (as combineTaskVectors and dareDrop round them), 80 bytes of scratch
 * after them, then at p + 128 the draws' u32s [seed1, seed2, first index (mod 2^32), threshold
 * (⌈p·2^32⌉, at most 2^32 − 1), possible (−1, or 0 when nothing is kept), block]: element j is
 * drawn at index block·2^32 + first + j, all in that one block (the caller checks). The
 * parameters' lanes (dareParams, drawParams) go after them, up to p + 240.
 */
export function dareMerge2(out: usize, base: usize, x1: usize, x2: usize, len: i32, p: usize): void {
  const elect = load<f64>(p, 40) != 0;
  const q = dareParams(p);
  const d = drawParams(p);
  let index = v128.load(d, 64);
  for (let i = 0; i < len; i += 8) {
    const at = <usize>i << 2;
    const index4 = i32x4.add(index, lanes(I32_4));
    v128.store(out + at, dareGroup(v128.load(base + at), v128.load(x1 + at), v128.load(x2 + at), keepDrawn(index, d, 0), keepDrawn(index, d, 1), q, elect));
    v128.store(out + at, dareGroup(v128.load(base + at, 16), v128.load(x1 + at, 16), v128.load(x2 + at, 16), keepDrawn(index4, d, 0), keepDrawn(index4, d, 1), q, elect), 16);
    index = i32x4.add(index4, lanes(I32_4));
  }
}

/** dareMerge2 on 16-bit codes (F16 2, BF16 3) into 16-bit codes (`outCode`), decoded and encoded in registers. */
export function dareMerge16(out: usize, base: usize, x1: usize, x2: usize, len: i32, p: usize, codeBase: u32, code1: u32, code2: u32, outCode: u32): void {
  const elect = load<f64>(p, 40) != 0;
  const limitBase = specialLimit(codeBase);
  const limit1 = specialLimit(code1);
  const limit2 = specialLimit(code2);
  const q = dareParams(p);
  const d = drawParams(p);
  let index = v128.load(d, 64);
  for (let i = 0; i < len; i += 8) {
    const at = <usize>i << 1;
    const hb = v128.load(base + at);
    const h1 = v128.load(x1 + at);
    const h2 = v128.load(x2 + at);
    const index4 = i32x4.add(index, lanes(I32_4));
    const k1lo = keepDrawn(index, d, 0);
    const k2lo = keepDrawn(index, d, 1);
    const k1hi = keepDrawn(index4, d, 0);
    const k2hi = keepDrawn(index4, d, 1);
    index = i32x4.add(index4, lanes(I32_4));
    let y0: v128;
    let y1: v128;
    if (anySpecialOf3(hb, h1, h2, limitBase, limit1, limit2)) {
      y0 = dareGroup(decodeLanes16(i32x4.extend_low_i16x8_u(hb), codeBase), decodeLanes16(i32x4.extend_low_i16x8_u(h1), code1), decodeLanes16(i32x4.extend_low_i16x8_u(h2), code2), k1lo, k2lo, q, elect);
      y1 = dareGroup(decodeLanes16(i32x4.extend_high_i16x8_u(hb), codeBase), decodeLanes16(i32x4.extend_high_i16x8_u(h1), code1), decodeLanes16(i32x4.extend_high_i16x8_u(h2), code2), k1hi, k2hi, q, elect);
    } else {
      y0 = dareGroup(finiteLanes16(i32x4.extend_low_i16x8_u(hb), codeBase), finiteLanes16(i32x4.extend_low_i16x8_u(h1), code1), finiteLanes16(i32x4.extend_low_i16x8_u(h2), code2), k1lo, k2lo, q, elect);
      y1 = dareGroup(finiteLanes16(i32x4.extend_high_i16x8_u(hb), codeBase), finiteLanes16(i32x4.extend_high_i16x8_u(h1), code1), finiteLanes16(i32x4.extend_high_i16x8_u(h2), code2), k1hi, k2hi, q, elect);
    }
    v128.store(out + at, i16x8.narrow_i32x4_u(encodeLanes16(y0, outCode), encodeLanes16(y1, outCode)));
  }
}

// TIES's merge pass and DARE's merge for any number m of task vectors, over F32 values the caller
// staged (decoded): kernel-ops-module's general loops (tiesMerge, dareMergeEncoded) bit for bit,
// four elements at a time. `inputs` holds m + 1 pointers (u32): the base, then x1 … xm.

/**
 * base + λ·mean of m weighted deltas wd_k (F32 lanes at wds + 16k; the weights' lanes at
 * ws + 16k), `sum` their sum in order from +0: with `elect` the sign-elected disjoint mean
 * (tiesLanes' steps for any m: a term agrees when, its sign flipped where the election is
 * negative, it is above 0; num and den add the agreeing terms in order from +0 and the others as
 * +0, which leaves them as they are, as the reference's skipped adds do), else sum / divisor.
 */
// @ts-ignore: decorator
@inline function combineLanesN(b: v128, sum: v128, wds: usize, ws: usize, m: i32, lambda: v128, divisor: v128, elect: bool): v128 {
  let mean: v128;
  if (elect) {
    const zero = f32x4.splat(0);
    const flip = v128.andnot(lanes(I32_80000000), f32x4.ge(sum, zero));
    let num = zero;
    let den = zero;
    for (let k = 0; k < m; k++) {
      const wd = v128.load(wds + (<usize>k << 4));
      const agree = f32x4.gt(v128.xor(wd, flip), zero);
      num = f32x4.add(num, v128.and(wd, agree));
      den = f32x4.add(den, v128.and(v128.load(ws + (<usize>k << 4)), agree));
    }
    // 0 where no delta agrees (den = 0).
    mean = v128.andnot(f32x4.div(num, den), f32x4.eq(den, zero));
  } else mean = f32x4.div(sum, divisor);
  return f32x4.add(b, f32x4.mul(lambda, mean));
}

/** Task vector k's F32 values (pointer k + 1 of `inputs`). */
// @ts-ignore: decorator
@inline function taskVectorAt(inputs: usize, k: i32): usize {
  return <usize>load<u32>(inputs + (<usize>(k + 1) << 2));
}

/**
 * DARE's merge of m task vectors: `p` holds F64 [λ, divisor, density, elect (0/1)] (F32 values),
 * at p + 32 the draws' u32s [first index (mod 2^32), threshold, possible, block] (dareMerge2's),
 * at p + 48 the m weights (F64) and after them the m stream seeds (u32). `lanesAt` (16-byte
 * aligned) takes 3·m lanes: the streams' keys, the weights as F32 lanes, the weighted deltas.
 * `len` is a multiple of 4; every draw index lies in the one 2^32 block (the caller checks).
 */
export function dareMergeN(out: usize, inputs: usize, m: i32, len: i32, p: usize, lanesAt: usize): void {
  const keys = lanesAt;
  const ws = lanesAt + (<usize>m << 4);
  const wds = ws + (<usize>m << 4);
  const block = lowbias32(load<u32>(p, 44));
  const seedsAt = p + 48 + (<usize>m << 3);
  for (let k = 0; k < m; k++) {
    v128.store(keys + (<usize>k << 4), i32x4.splat(<i32>lowbias32(load<u32>(seedsAt + (<usize>k << 2)) ^ block)));
    v128.store(ws + (<usize>k << 4), f32x4.splat(<f32>load<f64>(p + 48 + (<usize>k << 3))));
  }
  const lambda = f32x4.splat(<f32>load<f64>(p));
  const divisor = f32x4.splat(<f32>load<f64>(p, 8));
  const density = f32x4.splat(<f32>load<f64>(p, 16));
  const elect = load<f64>(p, 24) != 0;
  const threshold = i32x4.splat(load<i32>(p, 36));
  const possible = i32x4.splat(load<i32>(p, 40));
  const base = <usize>load<u32>(inputs);
  let index = i32x4.add(i32x4.splat(load<i32>(p, 32)), lanes(LANE_INDEX));
  for (let i = 0; i < len; i += 4) {
    const at = <usize>i << 2;
    const b = v128.load(base + at);
    let sum = f32x4.splat(0);
    for (let k = 0; k < m; k++) {
      const keep = v128.and(i32x4.ge_u(lowbias32Lanes(v128.xor(index, v128.load(keys + (<usize>k << 4)))), threshold), possible);
      // dareDrop's delta (x − b) / density, +0 where dropped, then weighted.
      const d = v128.and(f32x4.div(f32x4.sub(v128.load(taskVectorAt(inputs, k) + at), b), density), keep);
      const wd = f32x4.mul(v128.load(ws + (<usize>k << 4)), d);
      v128.store(wds + (<usize>k << 4), wd);
      sum = f32x4.add(sum, wd);
    }
    v128.store(out + at, combineLanesN(b, sum, wds, ws, m, lambda, divisor, elect));
    index = i32x4.add(index, lanes(I32_4));
  }
}

/**
 * One element of tiesMergeN the way the JavaScript reference does it (cut-equal quota in index
 * order, NaN, ±Inf). `p` as tiesMergeN's.
 */
function tiesElementN(out: usize, inputs: usize, m: i32, i: usize, p: usize): void {
  const at = i << 2;
  const b = load<f32>(<usize>load<u32>(inputs) + at);
  let sum: f32 = 0;
  for (let k = 0; k < m; k++) {
    const t = p + 8 + (<usize>k << 5);
    let d = load<f32>(taskVectorAt(inputs, k) + at) - b;
    const a = Mathf.abs(d);
    const c = <f32>load<f64>(t, 8);
    if (!(a > c)) {
      if (a == c && load<f64>(t, 24) < load<f64>(t, 16)) store<f64>(t, load<f64>(t, 24) + 1, 24);
      else d = 0;
    }
    const wd = <f32>load<f64>(t) * d;
    store<f32>(p + 8 + (<usize>m << 5) + (<usize>k << 2), wd);
    sum += wd;
  }
  const positive = sum >= 0;
  let num: f32 = 0;
  let den: f32 = 0;
  for (let k = 0; k < m; k++) {
    const wd = load<f32>(p + 8 + (<usize>m << 5) + (<usize>k << 2));
    if (positive ? wd > 0 : wd < 0) {
      num += wd;
      den += <f32>load<f64>(p + 8 + (<usize>k << 5));
    }
  }
  store<f32>(out + at, b + <f32>load<f64>(p) * (den == 0 ? 0 : num / den));
}

/**
 * TIES's merge pass over m task vectors: `p` holds F64 λ, then per task vector k at p + 8 + 32k
 * the F64s [weight, cut, quota, kept] (kept updated: cut-equal elements kept so far), then m F32s
 * of scratch for the element path. `lanesAt` (16-byte aligned) takes 3·m lanes: the weights and
 * the cuts as F32 lanes, the weighted deltas. Four elements go through the lanes unless one of
 * their deltas is not finite, or equals its cut while its quota runs out inside the four; those
 * take the element path, as does a tail of fewer than four (so no element past `len` counts
 * toward a quota).
 */
export function tiesMergeN(out: usize, inputs: usize, m: i32, len: i32, p: usize, lanesAt: usize): void {
  const ws = lanesAt;
  const cuts = lanesAt + (<usize>m << 4);
  const wds = cuts + (<usize>m << 4);
  for (let k = 0; k < m; k++) {
    const t = p + 8 + (<usize>k << 5);
    v128.store(ws + (<usize>k << 4), f32x4.splat(<f32>load<f64>(t)));
    v128.store(cuts + (<usize>k << 4), f32x4.splat(<f32>load<f64>(t, 8)));
  }
  const lambda = f32x4.splat(<f32>load<f64>(p));
  const unused = f32x4.splat(1);
  const base = <usize>load<u32>(inputs);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const at = <usize>i << 2;
    const b = v128.load(base + at);
    // First the cheap question: is any delta of the four equal to its cut, or not finite?
    let special = i32x4.splat(0);
    for (let k = 0; k < m; k++) {
      const a = f32x4.abs(f32x4.sub(v128.load(taskVectorAt(inputs, k) + at), b));
      special = v128.or(special, v128.or(f32x4.eq(a, v128.load(cuts + (<usize>k << 4))), v128.not(f32x4.le(a, lanes(F32_MAX)))));
    }
    let quotas = false;
    if (v128.any_true(special)) {
      // Cut-equal lanes are kept four at once where the quota covers them all, dropped where it
      // is spent; anything else (a quota running out inside the four, NaN, ±Inf) takes the
      // element path, before any quota changes.
      let element = false;
      for (let k = 0; k < m && !element; k++) {
        const t = p + 8 + (<usize>k << 5);
        const a = f32x4.abs(f32x4.sub(v128.load(taskVectorAt(inputs, k) + at), b));
        if (v128.any_true(v128.not(f32x4.le(a, lanes(F32_MAX))))) element = true;
        else {
          const n = <f64>popcnt<i32>(i32x4.bitmask(f32x4.eq(a, v128.load(cuts + (<usize>k << 4)))));
          const kept = load<f64>(t, 24);
          if (!(kept + n <= load<f64>(t, 16) || kept >= load<f64>(t, 16))) element = true;
        }
      }
      if (element) {
        for (let j: usize = 0; j < 4; j++) tiesElementN(out, inputs, m, <usize>i + j, p);
        continue;
      }
      quotas = true;
    }
    let sum = f32x4.splat(0);
    for (let k = 0; k < m; k++) {
      const d = f32x4.sub(v128.load(taskVectorAt(inputs, k) + at), b);
      const a = f32x4.abs(d);
      const c = v128.load(cuts + (<usize>k << 4));
      let g = f32x4.gt(a, c);
      if (quotas) {
        const e = f32x4.eq(a, c);
        const n = <f64>popcnt<i32>(i32x4.bitmask(e));
        const t = p + 8 + (<usize>k << 5);
        const kept = load<f64>(t, 24);
        if (n > 0 && kept + n <= load<f64>(t, 16)) {
          g = v128.or(g, e);
          store<f64>(t, kept + n, 24);
        }
      }
      const wd = f32x4.mul(v128.load(ws + (<usize>k << 4)), v128.and(d, g));
      v128.store(wds + (<usize>k << 4), wd);
      sum = f32x4.add(sum, wd);
    }
    v128.store(out + at, combineLanesN(b, sum, wds, ws, m, lambda, unused, true));
  }
  for (; i < len; i++) tiesElementN(out, inputs, m, <usize>i, p);
}

/** The twelve partials of dotAndNorms16/F32 (Σ a·b, Σ a², Σ b², four each) back to `sums`. */
// @ts-ignore: decorator
@inline function storeSums(sums: usize, ab01: v128, ab23: v128, aa01: v128, aa23: v128, bb01: v128, bb23: v128): void {
  v128.store(sums, ab01);
  v128.store(sums, ab23, 16);
  v128.store(sums, aa01, 32);
  v128.store(sums, aa23, 48);
  v128.store(sums, bb01, 64);
  v128.store(sums, bb23, 80);
}

/** One element of a tail (fewer than a vector's worth): x·y, x², y² into partial i mod 4 of each sum. */
// @ts-ignore: decorator
@inline function addToPartials(sums: usize, i: i32, x: f64, y: f64): void {
  const at = sums + (<usize>(i & 3) << 3);
  store<f64>(at, load<f64>(at) + x * y);
  store<f64>(at, load<f64>(at, 32) + x * x, 32);
  store<f64>(at, load<f64>(at, 64) + y * y, 64);
}

/**
 * slerp's statistics on 16-bit codes (kernel-ops-module's dotAndNormsEncoded): adds Σ a·b, Σ a², Σ b²
 * over `len` elements of `a` (dtype `codeA`) and `b` (`codeB`) to the three F64s at `sums`, element
 * after element in index order like the reference (its sums' bits depend on that order). The
 * products of two F32s are exact in F64, so they are formed two lanes at a time; only the adds
 * are sequential. Groups of eight without an Inf or NaN code read each code as an F64 from its
 * high word (scaledHighWords, pairOfHighWords) and scale it back by a power of two (exact,
 * subnormal codes included): the decoded values without the F32 decode and promote, about a
 * fifth fewer instructions. Other groups decode exactly.
 */
export function dotAndNorms16(a: usize, b: usize, len: i32, codeA: u32, codeB: u32, sums: usize): void {
  // Four partials per sum, element i into i mod 4 (kernel-ops-module's order): lanes 0–1 of the
  // first vector, 2–3 of the second. `sums` holds them, 12 F64s: Σ a·b, Σ a², Σ b², four each.
  let ab01 = v128.load(sums);
  let ab23 = v128.load(sums, 16);
  let aa01 = v128.load(sums, 32);
  let aa23 = v128.load(sums, 48);
  let bb01 = v128.load(sums, 64);
  let bb23 = v128.load(sums, 80);
  // Each input's dtype constants, in registers: shift, kept bits, Inf/NaN limit, scale.
  const shiftA = codeShift(codeA);
  const shiftB = codeShift(codeB);
  const keepA = codeKeep(codeA);
  const keepB = codeKeep(codeB);
  const limitA = specialLimit(codeA);
  const limitB = specialLimit(codeB);
  const scaleA = f64x2.splat(codeScale(codeA));
  const scaleB = f64x2.splat(codeScale(codeB));
  let i = 0;
  for (; i + 8 <= len; i += 8) {
    const ha = v128.load(a + (<usize>i << 1));
    const hb = v128.load(b + (<usize>i << 1));
    if (v128.any_true(v128.or(specialCodes(ha, limitA), specialCodes(hb, limitB)))) {
      for (let half = 0; half < 2; half++) {
        const xa = decodeLanes16(half == 0 ? i32x4.extend_low_i16x8_u(ha) : i32x4.extend_high_i16x8_u(ha), codeA);
        const xb = decodeLanes16(half == 0 ? i32x4.extend_low_i16x8_u(hb) : i32x4.extend_high_i16x8_u(hb), codeB);
        // F32 × F32 is exact in F64: only the additions round, in the same order as the reference.
        const a01 = f64x2.promote_low_f32x4(xa);
        const b01 = f64x2.promote_low_f32x4(xb);
        const a23 = f64x2.promote_low_f32x4(highHalf(xa));
        const b23 = f64x2.promote_low_f32x4(highHalf(xb));
        ab01 = f64x2.add(ab01, f64x2.mul(a01, b01));
        aa01 = f64x2.add(aa01, f64x2.mul(a01, a01));
        bb01 = f64x2.add(bb01, f64x2.mul(b01, b01));
        ab23 = f64x2.add(ab23, f64x2.mul(a23, b23));
        aa23 = f64x2.add(aa23, f64x2.mul(a23, a23));
        bb23 = f64x2.add(bb23, f64x2.mul(b23, b23));
      }
      continue;
    }
    const la = scaledHighWords(i32x4.extend_low_i16x8_s(ha), shiftA, keepA);
    const ua = scaledHighWords(i32x4.extend_high_i16x8_s(ha), shiftA, keepA);
    const lb = scaledHighWords(i32x4.extend_low_i16x8_s(hb), shiftB, keepB);
    const ub = scaledHighWords(i32x4.extend_high_i16x8_s(hb), shiftB, keepB);
    // Elements 0–3, then 4–7: lanes 0–1 into partials 0–1, lanes 2–3 into 2–3.
    let a01 = f64x2.mul(pairOfHighWords(la, false), scaleA);
    let a23 = f64x2.mul(pairOfHighWords(la, true), scaleA);
    let b01 = f64x2.mul(pairOfHighWords(lb, false), scaleB);
    let b23 = f64x2.mul(pairOfHighWords(lb, true), scaleB);
    ab01 = f64x2.add(ab01, f64x2.mul(a01, b01));
    aa01 = f64x2.add(aa01, f64x2.mul(a01, a01));
    bb01 = f64x2.add(bb01, f64x2.mul(b01, b01));
    ab23 = f64x2.add(ab23, f64x2.mul(a23, b23));
    aa23 = f64x2.add(aa23, f64x2.mul(a23, a23));
    bb23 = f64x2.add(bb23, f64x2.mul(b23, b23));
    a01 = f64x2.mul(pairOfHighWords(ua, false), scaleA);
    a23 = f64x2.mul(pairOfHighWords(ua, true), scaleA);
    b01 = f64x2.mul(pairOfHighWords(ub, false), scaleB);
    b23 = f64x2.mul(pairOfHighWords(ub, true), scaleB);
    ab01 = f64x2.add(ab01, f64x2.mul(a01, b01));
    aa01 = f64x2.add(aa01, f64x2.mul(a01, a01));
    bb01 = f64x2.add(bb01, f64x2.mul(b01, b01));
    ab23 = f64x2.add(ab23, f64x2.mul(a23, b23));
    aa23 = f64x2.add(aa23, f64x2.mul(a23, a23));
    bb23 = f64x2.add(bb23, f64x2.mul(b23, b23));
  }
  storeSums(sums, ab01, ab23, aa01, aa23, bb01, bb23);
  // The tail (fewer than eight), each element into its partial.
  for (; i < len; i++) {
    const x = <f64>f32x4.extract_lane(decodeLanes16(i32x4.splat(<i32>load<u16>(a + (<usize>i << 1))), codeA), 0);
    const y = <f64>f32x4.extract_lane(decodeLanes16(i32x4.splat(<i32>load<u16>(b + (<usize>i << 1))), codeB), 0);
    addToPartials(sums, i, x, y);
  }
}

/** dotAndNorms16 over F32 values (the other dtypes, staged as F32): the same partials, in the same order. */
export function dotAndNormsF32(a: usize, b: usize, len: i32, sums: usize): void {
  let ab01 = v128.load(sums);
  let ab23 = v128.load(sums, 16);
  let aa01 = v128.load(sums, 32);
  let aa23 = v128.load(sums, 48);
  let bb01 = v128.load(sums, 64);
  let bb23 = v128.load(sums, 80);
  let i = 0;
  for (; i + 4 <= len; i += 4) {
    const xa = v128.load(a + (<usize>i << 2));
    const xb = v128.load(b + (<usize>i << 2));
    const a01 = f64x2.promote_low_f32x4(xa);
    const b01 = f64x2.promote_low_f32x4(xb);
    const a23 = f64x2.promote_low_f32x4(highHalf(xa));
    const b23 = f64x2.promote_low_f32x4(highHalf(xb));
    ab01 = f64x2.add(ab01, f64x2.mul(a01, b01));
    aa01 = f64x2.add(aa01, f64x2.mul(a01, a01));
    bb01 = f64x2.add(bb01, f64x2.mul(b01, b01));
    ab23 = f64x2.add(ab23, f64x2.mul(a23, b23));
    aa23 = f64x2.add(aa23, f64x2.mul(a23, a23));
    bb23 = f64x2.add(bb23, f64x2.mul(b23, b23));
  }
  storeSums(sums, ab01, ab23, aa01, aa23, bb01, bb23);
  for (; i < len; i++) {
    const x = <f64>load<f32>(a + (<usize>i << 2));
    const y = <f64>load<f32>(b + (<usize>i << 2));
    addToPartials(sums, i, x, y);
  }
}

// Consensus (kernel-ops-module's consensus), bit for bit: two F64 lanes per vector, four elements
// (two vectors) per step. The F64 operations are the reference's, in its order; its per-element
// branches (min, max, the flat case) become pmin, pmax and selects.

/** b^e (e ≥ 1) in both lanes with consensusPower's multiplications, in its order. */
// @ts-ignore: decorator
@inline function consensusPower(b: v128, e: i32): v128 {
  let square = b;
  let rest = e;
  while ((rest & 1) == 0) {
    square = f64x2.mul(square, square);
    rest >>>= 1;
  }
  let w = square;
  for (rest >>>= 1; rest > 0; rest >>>= 1) {
    square = f64x2.mul(square, square);
    if (rest & 1) w = f64x2.mul(w, square);
  }
  return w;
}

/** One input's weight in both lanes: 1 where flat or e = 0, else ((max − s)·r)^e. */
// @ts-ignore: decorator
@inline function consensusWeight(s: v128, max: v128, r: v128, flat: v128, e: i32): v128 {
  if (e == 0) return lanes(F64_1);
  return v128.bitselect(lanes(F64_1), consensusPower(f64x2.mul(f64x2.sub(max, s), r), e), flat);
}

/**
 * Two lanes of three inputs' consensus, in registers (consensusF32's loop with n = 3, the
 * weights' powers side by side); E ≥ 1, `squares` = ctz(E), `bits` = E >> (squares + 1).
 */
// @ts-ignore: decorator
@inline function consensus3Lanes(v0: v128, v1: v128, v2: v128, flatBelow: v128, squares: i32, bits: i32): v128 {
  // |xᵢ − xⱼ| = |xⱼ − xᵢ| exactly (a subtraction's rounding is symmetric), so each is formed once.
  const d01 = f64x2.abs(f64x2.sub(v0, v1));
  const d02 = f64x2.abs(f64x2.sub(v0, v2));
  const d12 = f64x2.abs(f64x2.sub(v1, v2));
  const s0 = f64x2.add(d01, d02);
  const s1 = f64x2.add(d01, d12);
  const s2 = f64x2.add(d02, d12);
  const min = f64x2.pmin(f64x2.pmin(f64x2.pmin(lanes(F64_INF), s0), s1), s2);
  const max = f64x2.pmax(f64x2.pmax(f64x2.pmax(lanes(F64_NEG_INF), s0), s1), s2);
  const spread = f64x2.sub(max, min);
  const r = f64x2.div(lanes(F64_1), spread);
  let q0 = f64x2.mul(f64x2.sub(max, s0), r);
  let q1 = f64x2.mul(f64x2.sub(max, s1), r);
  let q2 = f64x2.mul(f64x2.sub(max, s2), r);
  for (let t = 0; t < squares; t++) {
    q0 = f64x2.mul(q0, q0);
    q1 = f64x2.mul(q1, q1);
    q2 = f64x2.mul(q2, q2);
  }
  let w0 = q0;
  let w1 = q1;
  let w2 = q2;
  for (let rest = bits; rest > 0; rest >>>= 1) {
    q0 = f64x2.mul(q0, q0);
    q1 = f64x2.mul(q1, q1);
    q2 = f64x2.mul(q2, q2);
    if (rest & 1) {
      w0 = f64x2.mul(w0, q0);
      w1 = f64x2.mul(w1, q1);
      w2 = f64x2.mul(w2, q2);
    }
  }
  const flat = f64x2.lt(spread, flatBelow);
  w0 = v128.bitselect(lanes(F64_1), w0, flat);
  w1 = v128.bitselect(lanes(F64_1), w1, flat);
  w2 = v128.bitselect(lanes(F64_1), w2, flat);
  const acc = f64x2.add(f64x2.add(f64x2.mul(v0, w0), f64x2.mul(v1, w1)), f64x2.mul(v2, w2));
  return f64x2.div(acc, f64x2.add(f64x2.add(w0, w1), w2));
}

/** Four elements of addDifference16 from 16-bit codes (u32 lanes): fround(a + fround(fround(b − c)·α)). */
// @ts-ignore: decorator
@inline function addDifferenceLanes(a: v128, b: v128, c: v128, alpha: v128): v128 {
  // F32 add and subtract round once, as the reference's F64 result stored to F32 does (a double
  // rounding that cannot differ for one operation on F32s); the scale is an F64 product rounded to F32.
  const d = f32x4.sub(b, c);
  const lo = f64x2.mul(f64x2.promote_low_f32x4(d), alpha);
  const hi = f64x2.mul(f64x2.promote_low_f32x4(highHalf(d)), alpha);
  return f32x4.add(a, joinLow(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi)));
}

/** Two F64 lanes of train_difference: a + ((scale·(b − c))·|b − a|) / (|b − a| + |b − c|), or a where that denominator is ±0. */
// @ts-ignore: decorator
@inline function trainDifferencePair(a: v128, b: v128, c: v128, scale: v128): v128 {
  const diff = f64x2.sub(b, c);
  const dist = f64x2.abs(f64x2.sub(b, a));
  const denom = f64x2.add(dist, f64x2.abs(diff));
  const y = f64x2.add(a, f64x2.div(f64x2.mul(f64x2.mul(scale, diff), dist), denom));
  return v128.bitselect(a, y, f64x2.eq(denom, f64x2.splat(0)));
}

/** Four elements of trainDifference16 from F32 lanes: the four F32 results (each an F64 result rounded once). */
// @ts-ignore: decorator
@inline function trainDifferenceLanes(a: v128, b: v128, c: v128, scale: v128): v128 {
  const lo = trainDifferencePair(f64x2.promote_low_f32x4(a), f64x2.promote_low_f32x4(b), f64x2.promote_low_f32x4(c), scale);
  const hi = trainDifferencePair(f64x2.promote_low_f32x4(highHalf(a)), f64x2.promote_low_f32x4(highHalf(b)), f64x2.promote_low_f32x4(highHalf(c)), scale);
  return joinLow(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi));
}

/** add_difference (`op` 0) or train_difference (1) lanes; `op` is a constant where inlined, so the choice folds away. */
// @ts-ignore: decorator
@inline function differenceLanes(op: i32, a: v128, b: v128, c: v128, scalar: v128): v128 {
  return op == 0 ? addDifferenceLanes(a, b, c, scalar) : trainDifferenceLanes(a, b, c, scalar);
}

/** The loop of addDifference16 and trainDifference16 (`op` as for differenceLanes). */
// @ts-ignore: decorator
@inline function differences16(op: i32, out: usize, a: usize, b: usize, c: usize, len: i32, scalar: f64, codeA: u32, codeB: u32, codeC: u32, outCode: u32): void {
  const s = f64x2.splat(scalar);
  for (let i = 0; i < len; i += 8) {
    const at = <usize>i << 1;
    const ha = v128.load(a + at);
    const hb = v128.load(b + at);
    const hc = v128.load(c + at);
    let y0: v128;
    let y1: v128;
    if (anySpecial16(ha, codeA) || anySpecial16(hb, codeB) || anySpecial16(hc, codeC)) {
      y0 = differenceLanes(op, decodeLanes16(i32x4.extend_low_i16x8_u(ha), codeA), decodeLanes16(i32x4.extend_low_i16x8_u(hb), codeB), decodeLanes16(i32x4.extend_low_i16x8_u(hc), codeC), s);
      y1 = differenceLanes(op, decodeLanes16(i32x4.extend_high_i16x8_u(ha), codeA), decodeLanes16(i32x4.extend_high_i16x8_u(hb), codeB), decodeLanes16(i32x4.extend_high_i16x8_u(hc), codeC), s);
    } else {
      y0 = differenceLanes(op, finiteLanes16(i32x4.extend_low_i16x8_u(ha), codeA), finiteLanes16(i32x4.extend_low_i16x8_u(hb), codeB), finiteLanes16(i32x4.extend_low_i16x8_u(hc), codeC), s);
      y1 = differenceLanes(op, finiteLanes16(i32x4.extend_high_i16x8_u(ha), codeA), finiteLanes16(i32x4.extend_high_i16x8_u(hb), codeB), finiteLanes16(i32x4.extend_high_i16x8_u(hc), codeC), s);
    }
    v128.store(out + at, i16x8.narrow_i32x4_u(encodeLanes16(y0, outCode), encodeLanes16(y1, outCode)));
  }
}

/** The loop of addDifferenceF32 and trainDifferenceF32 over F32 values (`len` a multiple of 4). */
// @ts-ignore: decorator
@inline function differencesF32(op: i32, out: usize, a: usize, b: usize, c: usize, len: i32, scalar: f64): void {
  const s = f64x2.splat(scalar);
  for (let i = 0; i < len; i += 4) {
    const at = <usize>i << 2;
    v128.store(out + at, differenceLanes(op, v128.load(a + at), v128.load(b + at), v128.load(c + at), s));
  }
}

/**
 * add_difference on 16-bit codes (F16 2, BF16 3) into 16-bit codes (`outCode`), `len` a
 * multiple of 8: kernel-ops-module's addDifferenceEncoded (decode, sub, scale by the F64 `alpha`,
 * add, encode) with the decode and encode in registers.
 */
export function addDifference16(out: usize, a: usize, b: usize, c: usize, len: i32, alpha: f64, codeA: u32, codeB: u32, codeC: u32, outCode: u32): void {
  differences16(0, out, a, b, c, len, alpha, codeA, codeB, codeC, outCode);
}

/**
 * train_difference on 16-bit codes into 16-bit codes, as addDifference16: kernel-ops-module's
 * trainDifferenceEncoded, its F64 operations in its order.
 */
export function trainDifference16(out: usize, a: usize, b: usize, c: usize, len: i32, scale: f64, codeA: u32, codeB: u32, codeC: u32, outCode: u32): void {
  differences16(1, out, a, b, c, len, scale, codeA, codeB, codeC, outCode);
}

/** add_difference over F32 values, for the other dtype mixes (staged as F32). */
export function addDifferenceF32(out: usize, a: usize, b: usize, c: usize, len: i32, alpha: f64): void {
  differencesF32(0, out, a, b, c, len, alpha);
}

/** train_difference over F32 values, for the other dtype mixes (staged as F32). */
export function trainDifferenceF32(out: usize, a: usize, b: usize, c: usize, len: i32, scale: f64): void {
  differencesF32(1, out, a, b, c, len, scale);
}

/**
 * Consensus merge of n F32 inputs into `out` (`len` elements, a multiple of 4): `inputs` holds n
 * pointers (u32), `exponent` is E ≥ 0, `scratch` holds 64·n bytes (16-byte aligned): each
 * input's four elements as F64s, then its four distance sums.
 */
export function consensusF32(out: usize, inputs: usize, n: i32, len: i32, exponent: i32, scratch: usize): void {
  const sumsAt = scratch + (<usize>n << 5);
  const flatBelow = f64x2.splat(<f64>n * 1e-10);
  if (n == 3 && exponent > 0) {
    const in0 = <usize>load<u32>(inputs);
    const in1 = <usize>load<u32>(inputs, 4);
    const in2 = <usize>load<u32>(inputs, 8);
    const squares = ctz(exponent);
    const bits = exponent >>> (squares + 1);
    for (let i = 0; i < len; i += 4) {
      const at = <usize>i << 2;
      const x0 = v128.load(in0 + at);
      const x1 = v128.load(in1 + at);
      const x2 = v128.load(in2 + at);
      const lo0 = f64x2.promote_low_f32x4(x0);
      const lo1 = f64x2.promote_low_f32x4(x1);
      const lo2 = f64x2.promote_low_f32x4(x2);
      const hi0 = f64x2.promote_low_f32x4(highHalf(x0));
      const hi1 = f64x2.promote_low_f32x4(highHalf(x1));
      const hi2 = f64x2.promote_low_f32x4(highHalf(x2));
      const lo = consensus3Lanes(lo0, lo1, lo2, flatBelow, squares, bits);
      const hi = consensus3Lanes(hi0, hi1, hi2, flatBelow, squares, bits);
      v128.store(out + at, joinLow(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi)));
    }
    return;
  }
  for (let i = 0; i < len; i += 4) {
    const at = <usize>i << 2;
    for (let k = 0; k < n; k++) {
      const x = v128.load(<usize>load<u32>(inputs + (<usize>k << 2)) + at);
      v128.store(scratch + (<usize>k << 5), f64x2.promote_low_f32x4(x));
      v128.store(scratch + (<usize>k << 5), f64x2.promote_low_f32x4(highHalf(x)), 16);
    }
    // sᵢ = Σ_{j ≠ i} |xᵢ − xⱼ| from +0, and the lanes' min and max: pmin(m, s) is s < m ? s : m,
    // the reference's `if (s < min) min = s` (a NaN never replaces), and pmax likewise.
    let minLo = lanes(F64_INF);
    let minHi = minLo;
    let maxLo = lanes(F64_NEG_INF);
    let maxHi = maxLo;
    for (let k = 0; k < n; k++) {
      const vAt = scratch + (<usize>k << 5);
      const vLo = v128.load(vAt);
      const vHi = v128.load(vAt, 16);
      let sLo = f64x2.splat(0);
      let sHi = sLo;
      for (let j = 0; j < n; j++) {
        if (j == k) continue;
        const jAt = scratch + (<usize>j << 5);
        sLo = f64x2.add(sLo, f64x2.abs(f64x2.sub(vLo, v128.load(jAt))));
        sHi = f64x2.add(sHi, f64x2.abs(f64x2.sub(vHi, v128.load(jAt, 16))));
      }
      v128.store(sumsAt + (<usize>k << 5), sLo);
      v128.store(sumsAt + (<usize>k << 5), sHi, 16);
      minLo = f64x2.pmin(minLo, sLo);
      minHi = f64x2.pmin(minHi, sHi);
      maxLo = f64x2.pmax(maxLo, sLo);
      maxHi = f64x2.pmax(maxHi, sHi);
    }
    const spreadLo = f64x2.sub(maxLo, minLo);
    const spreadHi = f64x2.sub(maxHi, minHi);
    const flatLo = f64x2.lt(spreadLo, flatBelow);
    const flatHi = f64x2.lt(spreadHi, flatBelow);
    const rLo = f64x2.div(lanes(F64_1), spreadLo);
    const rHi = f64x2.div(lanes(F64_1), spreadHi);
    let wLo = consensusWeight(v128.load(sumsAt), maxLo, rLo, flatLo, exponent);
    let wHi = consensusWeight(v128.load(sumsAt, 16), maxHi, rHi, flatHi, exponent);
    let accLo = f64x2.mul(v128.load(scratch), wLo);
    let accHi = f64x2.mul(v128.load(scratch, 16), wHi);
    let totalLo = wLo;
    let totalHi = wHi;
    for (let k = 1; k < n; k++) {
      const vAt = scratch + (<usize>k << 5);
      const sAt = sumsAt + (<usize>k << 5);
      wLo = consensusWeight(v128.load(sAt), maxLo, rLo, flatLo, exponent);
      wHi = consensusWeight(v128.load(sAt, 16), maxHi, rHi, flatHi, exponent);
      accLo = f64x2.add(accLo, f64x2.mul(v128.load(vAt), wLo));
      accHi = f64x2.add(accHi, f64x2.mul(v128.load(vAt, 16), wHi));
      totalLo = f64x2.add(totalLo, wLo);
      totalHi = f64x2.add(totalHi, wHi);
    }
    v128.store(out + at, joinLow(f32x4.demote_f64x2_zero(f64x2.div(accLo, totalLo)), f32x4.demote_f64x2_zero(f64x2.div(accHi, totalHi))));
  }
}

/**
 * LoRA's low-rank product (kernel-ops-module's addLowRankProduct) over `rows` rows: row i of `w`
 * (cols F32s from w + 4·i·cols) += factor · Σ_p up[i, p] · down[p, :], bit for bit: the sum in
 * F32 over p in order from +0, skipping p where up[i, p] is ±0 (so 0 · Inf adds no NaN), each
 * product and sum an F32 operation (no fused multiply-add); the factor's product in F64 (factor
 * an F64, as the reference's) rounded to F32, then the F32 add. Sixteen columns at a time in four
 * accumulators across p, then four, then one.
 */
export function addLowRankProduct(w: usize, up: usize, down: usize, rows: i32, rank: i32, cols: i32, factor: f64): void {
  const f = f64x2.splat(factor);
  const rowBytes = <usize>cols << 2;
  for (let i = 0; i < rows; i++) {
    const upRow = up + ((<usize>i * <usize>rank) << 2);
    const wRow = w + <usize>i * rowBytes;
    let j = 0;
    for (; j + 16 <= cols; j += 16) {
      let a0 = f32x4.splat(0);
      let a1 = a0;
      let a2 = a0;
      let a3 = a0;
      let d = down + (<usize>j << 2);
      for (let p = 0; p < rank; p++, d += rowBytes) {
        const av = load<f32>(upRow + (<usize>p << 2));
        if (av == 0) continue;
        const s = f32x4.splat(av);
        a0 = f32x4.add(a0, f32x4.mul(s, v128.load(d)));
        a1 = f32x4.add(a1, f32x4.mul(s, v128.load(d, 16)));
        a2 = f32x4.add(a2, f32x4.mul(s, v128.load(d, 32)));
        a3 = f32x4.add(a3, f32x4.mul(s, v128.load(d, 48)));
      }
      const at = wRow + (<usize>j << 2);
      v128.store(at, f32x4.add(v128.load(at), scaleToF32(a0, f)));
      v128.store(at, f32x4.add(v128.load(at, 16), scaleToF32(a1, f)), 16);
      v128.store(at, f32x4.add(v128.load(at, 32), scaleToF32(a2, f)), 32);
      v128.store(at, f32x4.add(v128.load(at, 48), scaleToF32(a3, f)), 48);
    }
    for (; j + 4 <= cols; j += 4) {
      let a = f32x4.splat(0);
      let d = down + (<usize>j << 2);
      for (let p = 0; p < rank; p++, d += rowBytes) {
        const av = load<f32>(upRow + (<usize>p << 2));
        if (av != 0) a = f32x4.add(a, f32x4.mul(f32x4.splat(av), v128.load(d)));
      }
      const at = wRow + (<usize>j << 2);
      v128.store(at, f32x4.add(v128.load(at), scaleToF32(a, f)));
    }
    for (; j < cols; j++) {
      let a: f32 = 0;
      let d = down + (<usize>j << 2);
      for (let p = 0; p < rank; p++, d += rowBytes) {
        const av = load<f32>(upRow + (<usize>p << 2));
        if (av != 0) a += av * load<f32>(d);
      }
      const at = wRow + (<usize>j << 2);
      store<f32>(at, load<f32>(at) + <f32>(factor * <f64>a));
    }
  }
}

/** Four F32 lanes times an F64 factor (two F64 lanes), each product rounded to F32. */
// @ts-ignore: decorator
@inline function scaleToF32(a: v128, f: v128): v128 {
  return joinLow(f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(a), f)), f32x4.demote_f64x2_zero(f64x2.mul(f64x2.promote_low_f32x4(highHalf(a)), f)));
}

// The randomized SVD's products with A (randomized-svd-module's timesRight and
// timesLeftTransposed), bit for bit: A's F32 values times F64 rows, each output element summed in
// the same order, A's zeros skipped, a multiply then an add (no fused multiply-add), two F64
// lanes at a time over the l columns.

/** out row += v · row `x` (l F64s), two lanes at a time. */
// @ts-ignore: decorator
@inline function addScaledRow(out: usize, x: usize, v: f64, l: i32): void {
  const vv = f64x2.splat(v);
  let c = 0;
  for (; c + 2 <= l; c += 2) {
    const at = <usize>c << 3;
    v128.store(out + at, f64x2.add(v128.load(out + at), f64x2.mul(vv, v128.load(x + at))));
  }
  if (c < l) store<f64>(out + (<usize>c << 3), load<f64>(out + (<usize>c << 3)) + v * load<f64>(x + (<usize>c << 3)));
}

/** Y[m×l] = A[m×n] · X[n×l]: y row i = Σ_j a[i, j] · x row j, j in order from +0. */
export function svdTimesRight(y: usize, a: usize, x: usize, m: i32, n: i32, l: i32): void {
  const rowBytes = <usize>l << 3;
  memory.fill(y, 0, <usize>m * rowBytes);
  for (let i = 0; i < m; i++) {
    const ai = a + ((<usize>i * <usize>n) << 2);
    const yi = y + <usize>i * rowBytes;
    for (let j = 0; j < n; j++) {
      const v = load<f32>(ai + (<usize>j << 2));
      if (v == 0) continue;
      addScaledRow(yi, x + <usize>j * rowBytes, <f64>v, l);
    }
  }
}

/** Z[n×l] = Aᵀ · Q[m×l]: z row j = Σ_i a[i, j] · q row i, i in order from +0. */
export function svdTimesLeftTransposed(z: usize, a: usize, q: usize, m: i32, n: i32, l: i32): void {
  const rowBytes = <usize>l << 3;
  memory.fill(z, 0, <usize>n * rowBytes);
  for (let i = 0; i < m; i++) {
    const ai = a + ((<usize>i * <usize>n) << 2);
    const qi = q + <usize>i * rowBytes;
    for (let j = 0; j < n; j++) {
      const v = load<f32>(ai + (<usize>j << 2));
      if (v == 0) continue;
      addScaledRow(z + <usize>j * rowBytes, qi, <f64>v, l);
    }
  }
}
