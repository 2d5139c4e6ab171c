// WebAssembly SIMD versions of the hot float kernels (AssemblyScript, compiled by
// scripts/build-wasm-kernels.mjs into src/wasm-kernels-bytes.ts). They must give exactly the
// bits of the JavaScript kernels in src/float-codecs-module.ts and src/kernel-ops-module.ts,
// which stay the reference. Pointers and lengths come from src/wasm-kernels-module.ts, which
// copies blocks of shared memory in and out of this module's memory. Every loop handles
// 8 elements per step: callers round the count up to a multiple of 8 (scratch is padded).

/** Start of the scratch area the caller may use (after any static data), 16-byte aligned. */
export function scratchBase(): usize {
  return (__heap_base + 15) & ~15;
}

/** Four F16 codes (u32 lanes) → four F32s, exactly as minifloatToF32Bits(code, 5, 10, 15, true). */
// @ts-ignore: decorator
@inline function f16LanesToF32(h: v128): v128 {
  const sign = i32x4.shl(v128.and(h, i32x4.splat(0x8000)), 16);
  const em = v128.and(h, i32x4.splat(0x7fff));
  const shifted = i32x4.shl(em, 13);
  // Normals and subnormals: the shifted bits read as an F32 (a subnormal one for F16
  // subnormals) times 2^112 rebias the exponent exactly (WebAssembly never flushes subnormals).
  const finite = f32x4.mul(shifted, f32x4.splat(5.192296858534828e33));
  // Inf and NaN: all-ones F32 exponent; NaN also gets the quiet bit, payload kept on top.
  const special = v128.or(v128.or(shifted, i32x4.splat(0x70000000)), v128.and(i32x4.gt_u(em, i32x4.splat(0x7c00)), i32x4.splat(0x00400000)));
  return v128.or(v128.bitselect(special, finite, i32x4.gt_u(em, i32x4.splat(0x7bff))), sign);
}

/** Four F32s (as bits) → four F16 codes in u32 lanes, round to nearest even (f32BitsToF16Bits). */
// @ts-ignore: decorator
@inline function f32LanesToF16(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 16), i32x4.splat(0x8000));
  const abs = v128.and(x, i32x4.splat(0x7fffffff));
  // Normal F16 range: rebias the exponent, round the 13 dropped bits to nearest even.
  const lsb = v128.and(i32x4.shr_u(abs, 13), i32x4.splat(1));
  const normal = i32x4.shr_u(i32x4.add(i32x4.add(i32x4.sub(abs, i32x4.splat(0x38000000)), i32x4.splat(0xfff)), lsb), 13);
  // Below 2^-14: adding 0.5 lets the F32 adder round to a multiple of 2^-24 (nearest even).
  const sub = i32x4.sub(f32x4.add(abs, f32x4.splat(0.5)), i32x4.splat(0x3f000000));
  // Overflow to Inf; NaN keeps the quiet bit and the top payload bits.
  const nan = v128.or(i32x4.splat(0x7e00), v128.and(i32x4.shr_u(abs, 13), i32x4.splat(0x3ff)));
  let r = v128.bitselect(sub, normal, i32x4.lt_u(abs, i32x4.splat(0x38800000)));
  r = v128.bitselect(i32x4.splat(0x7c00), r, i32x4.ge_u(abs, i32x4.splat(0x477ff000)));
  r = v128.bitselect(nan, r, i32x4.gt_u(abs, i32x4.splat(0x7f800000)));
  return v128.or(r, sign);
}

/** Four F32s (as bits) → four BF16 codes in u32 lanes (f32BitsToBF16Bits). */
// @ts-ignore: decorator
@inline function f32LanesToBF16(x: v128): v128 {
  const rounded = i32x4.shr_u(i32x4.add(i32x4.add(x, i32x4.splat(0x7fff)), v128.and(i32x4.shr_u(x, 16), i32x4.splat(1))), 16);
  const nan = v128.or(i32x4.shr_u(x, 16), i32x4.splat(0x40));
  const isNaN = i32x4.gt_u(v128.and(x, i32x4.splat(0x7fffffff)), i32x4.splat(0x7f800000));
  return v128.and(v128.bitselect(nan, rounded, isNaN), i32x4.splat(0xffff));
}

export function decodeF16(src: usize, dst: usize, n: i32): void {
  for (let i = 0; i < n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), f16LanesToF32(i32x4.extend_low_i16x8_u(h)));
    v128.store(dst + (<usize>i << 2), f16LanesToF32(i32x4.extend_high_i16x8_u(h)), 16);
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
    const lo = f32LanesToF16(v128.load(src + (<usize>i << 2)));
    const hi = f32LanesToF16(v128.load(src + (<usize>i << 2), 16));
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
  const sign = i32x4.shl(v128.and(c, i32x4.splat(0x80)), 24);
  const em = v128.and(c, i32x4.splat(0x7f));
  // The 7 bits read as an F32 exponent and mantissa (an F32 subnormal for E4M3 subnormals) times
  // 2^120 rebias the exponent exactly. 0x7f (S.1111.111) is NaN: quiet, payload kept on top.
  const finite = f32x4.mul(i32x4.shl(em, 20), f32x4.splat(1.329227995784916e36));
  const nan = i32x4.splat(0x7ff00000);
  return v128.or(v128.bitselect(nan, finite, i32x4.eq(em, i32x4.splat(0x7f))), sign);
}

/** Four F32s (as bits) → four E4M3FN codes in u32 lanes (f32BitsToE4M3Bits): nearest even, saturating at ±448. */
// @ts-ignore: decorator
@inline function f32LanesToE4M3(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 24), i32x4.splat(0x80));
  const abs = v128.and(x, i32x4.splat(0x7fffffff));
  const lsb = v128.and(i32x4.shr_u(abs, 20), i32x4.splat(1));
  // Normal range: rebias, round the 20 dropped bits to nearest even; 448 and above (Inf too) saturate.
  const normal = i32x4.min_u(i32x4.shr_u(i32x4.add(i32x4.add(i32x4.sub(abs, i32x4.splat(0x3c000000)), i32x4.splat(0x7ffff)), lsb), 20), i32x4.splat(0x7e));
  // Below 2^-6: adding 2^14 lets the F32 adder round to a multiple of 2^-9 (nearest even).
  const sub = i32x4.sub(f32x4.add(abs, f32x4.splat(16384)), i32x4.splat(0x46800000));
  let r = v128.bitselect(sub, normal, i32x4.lt_u(abs, i32x4.splat(0x3c800000)));
  r = v128.bitselect(i32x4.splat(0x7f), r, i32x4.gt_u(abs, i32x4.splat(0x7f800000)));
  return v128.or(r, sign);
}

/** Four F32s (as bits) → four E5M2 codes in u32 lanes (f32BitsToE5M2Bits): nearest even, overflow to ±Inf, NaN S.11111.11. */
// @ts-ignore: decorator
@inline function f32LanesToE5M2(x: v128): v128 {
  const sign = v128.and(i32x4.shr_u(x, 24), i32x4.splat(0x80));
  const abs = v128.and(x, i32x4.splat(0x7fffffff));
  const lsb = v128.and(i32x4.shr_u(abs, 21), i32x4.splat(1));
  const normal = i32x4.min_u(i32x4.shr_u(i32x4.add(i32x4.add(i32x4.sub(abs, i32x4.splat(0x38000000)), i32x4.splat(0xfffff)), lsb), 21), i32x4.splat(0x7c));
  // Below 2^-14: adding 2^7 rounds to a multiple of 2^-16 (nearest even).
  const sub = i32x4.sub(f32x4.add(abs, f32x4.splat(128)), i32x4.splat(0x43000000));
  let r = v128.bitselect(sub, normal, i32x4.lt_u(abs, i32x4.splat(0x38800000)));
  r = v128.bitselect(i32x4.splat(0x7f), r, i32x4.gt_u(abs, i32x4.splat(0x7f800000)));
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

/**
 * out = Σ w[k]·in[k] over n inputs, accumulated in F64 in input order and rounded once to F32,
 * like the weightedSum op (which starts from +0 when n ≥ 3). `inputs` holds n pointers (u32),
 * `weights` n F64s. `f16` selects F16 inputs and F16 output (the fused weightedSumEncoded),
 * otherwise inputs and output are F32.
 */
function weightedSum(out: usize, inputs: usize, weights: usize, n: i32, len: i32, f16: bool): void {
  const plusZero = n >= 3;
  const w0 = f64x2.splat(load<f64>(weights));
  const in0 = <usize>load<u32>(inputs);
  for (let i = 0; i < len; i += 8) {
    let x0: v128, x1: v128;
    if (f16) {
      const h = v128.load(in0 + (<usize>i << 1));
      x0 = f16LanesToF32(i32x4.extend_low_i16x8_u(h));
      x1 = f16LanesToF32(i32x4.extend_high_i16x8_u(h));
    } else {
      x0 = v128.load(in0 + (<usize>i << 2));
      x1 = v128.load(in0 + (<usize>i << 2), 16);
    }
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
      if (f16) {
        const h = v128.load(p + (<usize>i << 1));
        x0 = f16LanesToF32(i32x4.extend_low_i16x8_u(h));
        x1 = f16LanesToF32(i32x4.extend_high_i16x8_u(h));
      } else {
        x0 = v128.load(p + (<usize>i << 2));
        x1 = v128.load(p + (<usize>i << 2), 16);
      }
      a0 = f64x2.add(a0, f64x2.mul(w, f64x2.promote_low_f32x4(x0)));
      a1 = f64x2.add(a1, f64x2.mul(w, f64x2.promote_low_f32x4(highHalf(x0))));
      a2 = f64x2.add(a2, f64x2.mul(w, f64x2.promote_low_f32x4(x1)));
      a3 = f64x2.add(a3, f64x2.mul(w, f64x2.promote_low_f32x4(highHalf(x1))));
    }
    const y0 = joinLow(f32x4.demote_f64x2_zero(a0), f32x4.demote_f64x2_zero(a1));
    const y1 = joinLow(f32x4.demote_f64x2_zero(a2), f32x4.demote_f64x2_zero(a3));
    if (f16) {
      v128.store(out + (<usize>i << 1), i16x8.narrow_i32x4_u(f32LanesToF16(y0), f32LanesToF16(y1)));
    } else {
      v128.store(out + (<usize>i << 2), y0);
      v128.store(out + (<usize>i << 2), y1, 16);
    }
  }
}

export function weightedSumF16(out: usize, inputs: usize, weights: usize, n: i32, len: i32): void {
  weightedSum(out, inputs, weights, n, len, true);
}

export function weightedSumF32(out: usize, inputs: usize, weights: usize, n: i32, len: i32): void {
  weightedSum(out, inputs, weights, n, len, false);
}
