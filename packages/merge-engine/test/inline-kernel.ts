import type { DType, KernelBackend } from "@stmerge/core-tensors";

/**
 * A plain single-threaded implementation of `KernelBackend` for tests, written for clarity
 * rather than speed. Float conversions use IEEE rules with round-to-nearest-even.
 */
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

export function f32ToF16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  const mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let r = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) r++;
  return sign | r;
}

export function createInlineKernel(): KernelBackend {
  const outF32 = (n: number, out?: Float32Array) => out ?? new Float32Array(n);
  const map1 = async (a: Float32Array, fn: (x: number) => number, out?: Float32Array) => {
    const o = outF32(a.length, out);
    for (let i = 0; i < a.length; i++) o[i] = fn(a[i]!);
    return o;
  };
  const map2 = async (a: Float32Array, b: Float32Array, fn: (x: number, y: number) => number, out?: Float32Array) => {
    const o = outF32(a.length, out);
    for (let i = 0; i < a.length; i++) o[i] = fn(a[i]!, b[i]!);
    return o;
  };
  return {
    kind: "cpu",
    description: "inline test kernel",
    parallelism: 1,
    allocF32: (n) => new Float32Array(n),
    allocBytes: (n) => new Uint8Array(n),
    async decode(bytes: Uint8Array, dtype: DType, out?: Float32Array) {
      const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const size = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 }[dtype as string];
      if (size === undefined) throw new Error(`inline kernel cannot decode ${dtype}`);
      const n = bytes.byteLength / size;
      const o = outF32(n, out);
      for (let i = 0; i < n; i++) {
        const p = i * size;
        o[i] =
          dtype === "F32" ? view.getFloat32(p, true)
          : dtype === "F64" ? view.getFloat64(p, true)
          : dtype === "F16" ? f16ToF32(view.getUint16(p, true))
          : dtype === "BF16" ? (u32[0] = view.getUint16(p, true) << 16, f32[0]!)
          : dtype === "I64" ? Number(view.getBigInt64(p, true))
          : dtype === "I32" ? view.getInt32(p, true)
          : dtype === "I16" ? view.getInt16(p, true)
          : dtype === "I8" ? view.getInt8(p)
          : view.getUint8(p);
      }
      return o;
    },
    async encode(values: Float32Array, dtype: DType, out?: Uint8Array) {
      const size = dtype === "F32" ? 4 : dtype === "F64" ? 8 : 2;
      const o = out ?? new Uint8Array(values.length * size);
      const view = new DataView(o.buffer, o.byteOffset, o.byteLength);
      for (let i = 0; i < values.length; i++) {
        const v = values[i]!;
        if (dtype === "F32") view.setFloat32(i * 4, v, true);
        else if (dtype === "F64") view.setFloat64(i * 8, v, true);
        else if (dtype === "F16") view.setUint16(i * 2, f32ToF16(v), true);
        else if (dtype === "BF16") {
          f32[0] = v;
          const x = u32[0]!;
          const r = Number.isNaN(v) ? (x >>> 16) | 0x40 : (x + 0x7fff + ((x >>> 16) & 1)) >>> 16;
          view.setUint16(i * 2, r & 0xffff, true);
        } else throw new Error(`inline kernel cannot encode ${dtype}`);
      }
      return o;
    },
    async weightedSum(inputs, weights, out) {
      const n = inputs[0]?.length ?? 0;
      const o = outF32(n, out);
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let j = 0; j < inputs.length; j++) s = Math.fround(s + Math.fround(weights[j]! * inputs[j]![i]!));
        o[i] = s;
      }
      return o;
    },
    scale: (a, s, out) => map1(a, (x) => x * s, out),
    add: (a, b, out) => map2(a, b, (x, y) => x + y, out),
    sub: (a, b, out) => map2(a, b, (x, y) => x - y, out),
    lerp: (a, b, t, out) => map2(a, b, (x, y) => x + t * (y - x), out),
    abs: (a, out) => map1(a, Math.abs, out),
    sign: (a, out) => map1(a, (x) => (Number.isNaN(x) ? NaN : x > 0 ? 1 : x < 0 ? -1 : 0), out),
    clamp: (a, lo, hi, out) => map1(a, (x) => Math.min(Math.max(x, lo), hi), out),
    async dot(a, b) {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
      return s;
    },
    async norm(a) {
      let s = 0;
      for (let i = 0; i < a.length; i++) s += a[i]! * a[i]!;
      return Math.sqrt(s);
    },
    async topKThreshold(a, k) {
      if (k <= 0) return Infinity;
      if (k >= a.length) return 0;
      const mags = Array.from(a, Math.abs).sort((x, y) => y - x);
      return mags[k - 1]!;
    },
    async close() {},
  };
}
