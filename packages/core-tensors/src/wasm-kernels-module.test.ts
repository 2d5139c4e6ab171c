import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import { localCodecs, localOps, simdKernelsAvailable } from "./local-kernels.js";
import type { KernelOps } from "./kernel-ops-module.js";
import { SIMD_KERNELS_SHARED_WASM_BASE64, SIMD_KERNELS_WASM_BASE64 } from "./wasm-kernels-bytes.js";
import { wasmKernelsModule } from "./wasm-kernels-module.js";
import { KernelWorkerPool } from "./worker-pool.js";

// The WebAssembly SIMD kernels against PyTorch's tables (tools/fixtures/float_tables.py) and, bit
// for bit, against the JavaScript kernels on the same inputs (NaN payloads included).
const simd = localOps(true);
const js = localOps(false);
const hasSimd = simd !== js;

const tableDir = new URL("../test/fixtures/float-tables/", import.meta.url);
const table = (name: string) => new Uint8Array(gunzipSync(readFileSync(new URL(name, tableDir))));
const u32 = (v: ArrayBufferView) => new Uint32Array(v.buffer, v.byteOffset, v.byteLength >>> 2);
const u16 = (v: ArrayBufferView) => new Uint16Array(v.buffer, v.byteOffset, v.byteLength >>> 1);

/**
 * First few indices where two equally long arrays differ, as "i: got x expected y" (16- or 32-bit
 * lanes). `anyNaN(i)` marks elements where two or more NaNs meet in a sum: which payload wins
 * there is not fixed even in JavaScript (ECMAScript lets a NaN stored to a typed array have any
 * bits, and V8 may swap the operands of a commutative add), so any NaN matches any NaN there.
 */
function differences(actual: ArrayBufferView, expected: ArrayBufferView, lane: 2 | 4, anyNaN?: (i: number) => boolean): string[] {
  const a = lane === 4 ? u32(actual) : u16(actual);
  const e = lane === 4 ? u32(expected) : u16(expected);
  const isNaN = lane === 4 ? (x: number) => (x & 0x7fffffff) > 0x7f800000 : (x: number) => (x & 0x7fff) > 0x7c00;
  expect(a.length).toBe(e.length);
  const bad: string[] = [];
  for (let i = 0; i < e.length && bad.length < 5; i++) {
    if (a[i] === e[i] || (anyNaN?.(i) && isNaN(a[i]!) && isNaN(e[i]!))) continue;
    bad.push(`${i}: got 0x${a[i]!.toString(16)} expected 0x${e[i]!.toString(16)}`);
  }
  return bad;
}

/** Whether Σ w[k]·x[k] (in order, in F64) meets two or more NaNs: NaN terms, or Inf − Inf. */
function nanCollision(terms: number[]): boolean {
  let sum = 0;
  let nans = 0;
  for (const t of terms) {
    if (Number.isNaN(t)) nans++;
    else if (!Number.isNaN(sum) && Number.isNaN(sum + t)) nans++;
    sum += t;
  }
  return nans >= 2;
}

/** Element sizes by dtype code (1 F32, 2 F16, 3 BF16, 4 F8_E4M3, 5 F8_E5M2). */
const SIZE = { 1: 4, 2: 2, 3: 2, 4: 1, 5: 1 } as const;

/**
 * Inputs of dtype codes `dtypes`, `length` elements each, from F32 bit patterns (the top 16 or 8
 * bits for narrower dtypes): element i of input k is pattern[(i·(k + 3) + k) mod its length], or
 * pattern[3i mod its length] in every input where `same(i)`.
 */
function patternInputs(dtypes: readonly (1 | 2 | 3 | 4 | 5)[], length: number, pattern: readonly number[], same: (i: number) => boolean = () => false): Uint8Array[] {
  return dtypes.map((code, k) => {
    const size = SIZE[code];
    const bytes = new Uint8Array(length * size);
    const view = new DataView(bytes.buffer);
    for (let i = 0; i < length; i++) {
      const bits = (same(i) ? pattern[(3 * i) % pattern.length]! : pattern[(i * (k + 3) + k) % pattern.length]!) >>> 0;
      if (size === 4) view.setUint32(4 * i, bits, true);
      else if (size === 2) view.setUint16(2 * i, bits >>> 16, true);
      else bytes[i] = bits >>> 24;
    }
    return bytes;
  });
}

const f16Value = (code: number) => localCodecs().f32FromBits(localCodecs().f16BitsToF32Bits(code));
const bf16Value = (code: number) => localCodecs().f32FromBits(code << 16);

const DTYPE = { F16: 2, BF16: 3, F8_E4M3: 4, F8_E5M2: 5 } as const;

function decodeWith(ops: typeof js, codes: Uint16Array | Uint8Array, dtype: 2 | 3 | 4 | 5): Float32Array {
  const out = new Float32Array(codes.length);
  ops.decode!([new Uint8Array(codes.buffer, codes.byteOffset, codes.byteLength), out], 0, codes.length, { dtype });
  return out;
}

function encodeF8With(ops: typeof js, values: Float32Array, dtype: 4 | 5): Uint8Array {
  const out = new Uint8Array(values.length);
  ops.encode!([values, out], 0, values.length, { dtype });
  return out;
}

/** First few indices where two byte arrays differ, as "i: got x expected y". */
function byteDifferences(actual: Uint8Array, expected: Uint8Array): string[] {
  expect(actual.length).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < expected.length && bad.length < 5; i++) if (actual[i] !== expected[i]) bad.push(`${i}: got 0x${actual[i]!.toString(16)} expected 0x${expected[i]!.toString(16)}`);
  return bad;
}

function encodeWith(ops: typeof js, values: Float32Array, dtype: 2 | 3): Uint16Array {
  const out = new Uint8Array(values.length * 2);
  ops.encode!([values, out], 0, values.length, { dtype });
  return u16(out);
}

/** The fused weighted sum of 16-bit inputs: F16 unless `dtypes` (per input) and `outDtype` say BF16. */
function weightedSumF16With(ops: typeof js, inputs: Uint16Array[], weights: number[], dtypes: readonly (2 | 3)[] = [], outDtype: 2 | 3 = 2): Uint16Array {
  const length = inputs[0]!.length;
  const out = new Uint8Array(length * 2);
  const params: Record<string, number> = { od: outDtype };
  weights.forEach((w, k) => ((params[`w${k}`] = w), (params[`d${k}`] = dtypes[k] ?? 2)));
  ops.weightedSumEncoded!([out, ...inputs.map((x) => new Uint8Array(x.buffer, x.byteOffset, x.byteLength))], 0, length, params);
  return u16(out);
}

function weightedSumF32With(ops: typeof js, inputs: Float32Array[], weights: number[]): Float32Array {
  const out = new Float32Array(inputs[0]!.length);
  const params: Record<string, number> = {};
  weights.forEach((w, k) => (params[`w${k}`] = w));
  ops.weightedSum!([out, ...inputs], 0, out.length, params);
  return out;
}

/**
 * The kernels on an arena's shared memory (kernel-arena), called as a worker calls them: each
 * call places the arrays in the memory (three in four; the fourth stays where it is and is
 * copied, as an array outside the arena would be), passes their addresses, and copies them back
 * afterwards. 64 guard bytes around each placed array must come back unchanged: the in-place
 * kernels may read past a block but never write outside their range.
 */
function inPlaceOps(): KernelOps {
  const api = (globalThis as unknown as { WebAssembly: { Memory: new (d: object) => { buffer: SharedArrayBuffer } } }).WebAssembly;
  const memory = new api.Memory({ initial: 1 + 32 + 64, maximum: 65536, shared: true });
  const arena = wasmKernelsModule(simd, SIMD_KERNELS_SHARED_WASM_BASE64, { memory, scratchAt: 65536, scratchBytes: 2 << 20 })!;
  const GUARD = 64;
  let calls = 0;
  const wrapped: KernelOps = {};
  for (const [name, op] of Object.entries(arena)) {
    wrapped[name] = (arrays, from, to, params) => {
      calls++;
      let top = 65536 + (2 << 20);
      const bytes = new Uint8Array(memory.buffer);
      const placed: { at: number; original: ArrayBufferView; view: ArrayBufferView }[] = [];
      const at = arrays.map((a, k) => {
        if ((calls + k) % 4 === 3) return -1;
        const address = top + GUARD;
        top = (address + a.byteLength + GUARD + 15) & ~15;
        const Ctor = a.constructor as new (buffer: ArrayBufferLike, offset: number, length: number) => ArrayBufferView;
        const view = new Ctor(memory.buffer, address, a.byteLength / ((a as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT ?? 1));
        bytes.fill(0xa5, address - GUARD, address);
        bytes.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), address);
        bytes.fill(0xa5, address + a.byteLength, address + a.byteLength + GUARD);
        placed.push({ at: address, original: a, view });
        return address;
      });
      if (top > memory.buffer.byteLength) throw new Error("test arena too small");
      const result = op(placed.length === 0 ? arrays : arrays.map((a, k) => (at[k]! >= 0 ? placed.find((p) => p.original === a && p.at === at[k])!.view : a)), from, to, params, at);
      for (const { at: address, original, view } of placed) {
        const after = new Uint8Array(memory.buffer);
        const guards = [...after.subarray(address - GUARD, address), ...after.subarray(address + original.byteLength, address + original.byteLength + GUARD)];
        if (guards.some((g) => g !== 0xa5)) throw new Error(`${name} wrote outside an array's bytes`);
        new Uint8Array(original.buffer, original.byteOffset, original.byteLength).set(new Uint8Array(view.buffer, view.byteOffset, view.byteLength));
      }
      return result;
    };
  }
  return wrapped;
}

describe.skipIf(!hasSimd).each([
  ["copied through the module's memory", () => simd],
  ["in place on an arena's memory", inPlaceOps],
] as const)("WebAssembly SIMD kernels (%s)", (_mode, opsFor) => {
  const simd = opsFor();
  const all16 = Uint16Array.from({ length: 65536 }, (_, i) => i);

  it.each([
    ["F16", "f16-decode.f32.gz"],
    ["BF16", "bf16-decode.f32.gz"],
  ] as const)("decode %s: all 65536 codes equal the JS kernel bit for bit and PyTorch's table value for value", (dtype, file) => {
    const actual = decodeWith(simd, all16, DTYPE[dtype]);
    expect(differences(actual, decodeWith(js, all16, DTYPE[dtype]), 4)).toEqual([]);
    const torch = new Float32Array(table(file).buffer);
    const bad = [...torch.keys()].filter((i) => !(Object.is(actual[i], torch[i]) || (Number.isNaN(actual[i]) && Number.isNaN(torch[i]))));
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it.each([
    ["F16", "f32-to-f16.u16.gz"],
    ["BF16", "f32-to-bf16.u16.gz"],
  ] as const)("encode %s: PyTorch's F32 samples equal the JS kernel bit for bit and PyTorch's codes", (dtype, file) => {
    const samples = new Float32Array(table("f32-samples.u32.gz").buffer);
    const actual = encodeWith(simd, samples, DTYPE[dtype]);
    expect(differences(actual, encodeWith(js, samples, DTYPE[dtype]), 2)).toEqual([]);
    const torch = u16(table(file));
    // NaN codes: any NaN matches (torch's payloads differ from ours, see float-codecs.test.ts).
    const isNaN = (c: number) => (dtype === "F16" ? (c & 0x7c00) === 0x7c00 && (c & 0x3ff) !== 0 : (c & 0x7f80) === 0x7f80 && (c & 0x7f) !== 0);
    const bad = [...torch.keys()].filter((i) => actual[i] !== torch[i] && !(isNaN(actual[i]!) && isNaN(torch[i]!)));
    expect(bad.slice(0, 5).map((i) => `0x${u32(samples)[i]!.toString(16)}`)).toEqual([]);
  });

  // Any 32-bit pattern: NaNs with payloads, ±Inf, subnormals, ±0, values at the rounding ties.
  const f32Bits = fc.oneof(
    fc.integer({ min: 0, max: 0xffffffff }),
    fc.tuple(fc.integer({ min: 0, max: 0x00ffffff }), fc.boolean()).map(([x, negative]) => (negative ? x | 0x80000000 : x)),
    fc.constantFrom(0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001, 0xffffffff, 0x477ff000, 0x477fefff, 0x38800000, 0x387fffff, 0x33000000, 0x33000001, 0x3f808000, 0x3f818000),
  );
  const lengths = fc.integer({ min: 1, max: 40_000 });

  it("encode F16/BF16 of random bit patterns equals the JS kernel (any length, any tail)", () => {
    fc.assert(
      fc.property(fc.array(f32Bits, { minLength: 1, maxLength: 300 }), lengths, (pattern, length) => {
        const bits = Uint32Array.from({ length }, (_, i) => pattern[i % pattern.length]! >>> 0);
        const values = new Float32Array(bits.buffer);
        for (const dtype of [2, 3] as const) expect(differences(encodeWith(simd, values, dtype), encodeWith(js, values, dtype), 2)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  const all8 = Uint8Array.from({ length: 256 }, (_, i) => i);

  it.each([
    ["F8_E4M3", "e4m3-decode.f32.gz"],
    ["F8_E5M2", "e5m2-decode.f32.gz"],
  ] as const)("decode %s: all 256 codes equal the JS kernel bit for bit and PyTorch's table value for value", (dtype, file) => {
    // Repeated so the codes also run through full blocks and a ragged tail.
    const codes = Uint8Array.from({ length: 256 * 41 + 3 }, (_, i) => all8[(i * 7) % 256]!);
    const actual = decodeWith(simd, codes, DTYPE[dtype]);
    expect(differences(actual, decodeWith(js, codes, DTYPE[dtype]), 4)).toEqual([]);
    const torch = new Float32Array(table(file).buffer);
    const once = decodeWith(simd, all8, DTYPE[dtype]);
    const bad = [...torch.keys()].filter((i) => !(Object.is(once[i], torch[i]) || (Number.isNaN(once[i]) && Number.isNaN(torch[i]))));
    expect(bad.slice(0, 5)).toEqual([]);
  });

  it.each([
    ["F8_E4M3", "f32-to-e4m3.u8.gz"],
    ["F8_E5M2", "f32-to-e5m2.u8.gz"],
  ] as const)("encode %s: PyTorch's F32 samples equal the JS kernel bit for bit and PyTorch's codes", (dtype, file) => {
    const samples = new Float32Array(table("f32-samples.u32.gz").buffer);
    const actual = encodeF8With(simd, samples, DTYPE[dtype]);
    expect(byteDifferences(actual, encodeF8With(js, samples, DTYPE[dtype]))).toEqual([]);
    const torch = table(file);
    // NaN codes: any NaN matches (E4M3 has one NaN per sign; E5M2 NaNs carry a payload).
    const isNaN = (c: number) => (dtype === "F8_E4M3" ? (c & 0x7f) === 0x7f : (c & 0x7c) === 0x7c && (c & 3) !== 0);
    const bad = [...torch.keys()].filter((i) => actual[i] !== torch[i] && !(isNaN(actual[i]!) && isNaN(torch[i]!)));
    expect(bad.slice(0, 5).map((i) => `0x${u32(samples)[i]!.toString(16)}`)).toEqual([]);
  });

  // F8 rounding edges: E4M3 448/464 (saturation), 2^-6 and 2^-9 (subnormals), ties; E5M2 57344, 2^-14, 2^-16.
  const f8Edges = fc.constantFrom(0x43e00000, 0x43e7ffff, 0x43e80000, 0x43dfffff, 0x3c800000, 0x3c7fffff, 0x3b000000, 0x3a800000, 0x3a800001, 0x3ac00000, 0x47600000, 0x476fffff, 0x47700000, 0x38800000, 0x387fffff, 0x37800000, 0x37000000, 0x37000001, 0x3f880000, 0x3f900000, 0x3fa00000);
  const f8Values = fc.oneof(f32Bits, f8Edges, fc.double({ min: -600, max: 600, noNaN: true }).map((x) => new Uint32Array(new Float32Array([x]).buffer)[0]!));

  it("encode and decode F8 (E4M3FN, E5M2) of random data equal the JS kernel (any length, any tail)", () => {
    fc.assert(
      fc.property(fc.array(f8Values, { minLength: 1, maxLength: 300 }), lengths, fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 300 }), (pattern, length, codePattern) => {
        const values = new Float32Array(Uint32Array.from({ length }, (_, i) => pattern[i % pattern.length]! >>> 0).buffer);
        const codes = Uint8Array.from({ length }, (_, i) => codePattern[i % codePattern.length]!);
        for (const dtype of [4, 5] as const) {
          expect(byteDifferences(encodeF8With(simd, values, dtype), encodeF8With(js, values, dtype))).toEqual([]);
          expect(differences(decodeWith(simd, codes, dtype), decodeWith(js, codes, dtype), 4)).toEqual([]);
        }
      }),
      { numRuns: 60 },
    );
  });

  const f16Code = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0xfdff, 0x0001, 0x83ff, 0x0400, 0x7bff));

  it("the fused F16 weighted sum of 1–6 inputs equals the JS kernel, NaN/Inf/subnormal/-0 codes included", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, -0, 1, 0.5, 1e-8, 65504)), { minLength: 6, maxLength: 6 }),
        fc.array(f16Code, { minLength: 1, maxLength: 97 }),
        fc.integer({ min: 1, max: 20_000 }),
        (n, weights, pattern, length) => {
          const inputs = Array.from({ length: n }, (_, k) => Uint16Array.from({ length }, (_, i) => pattern[(i * (k + 3) + k) % pattern.length]!));
          const w = weights.slice(0, n);
          const anyNaN = (i: number) => nanCollision(inputs.map((x, k) => w[k]! * f16Value(x[i]!)));
          expect(differences(weightedSumF16With(simd, inputs, w), weightedSumF16With(js, inputs, w), 2, anyNaN)).toEqual([]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it("the fused weighted sum of F16 and BF16 inputs in any mix, into F16 or BF16, equals the JS kernel (fast and exact paths, huge and tiny weights)", () => {
    const code16 = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x0001, 0x807f, 0x0080, 0x7f7f, 0x477f, 0x3800, 0x387f));
    // Values where the F16 output leaves its normal range (subnormal, overflow), and ordinary ones.
    const mostlyFinite = fc.oneof(code16, fc.integer({ min: 0x0400, max: 0x7bff }), fc.integer({ min: 0x3000, max: 0x4400 }));
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(fc.constantFrom<2 | 3>(2, 3), { minLength: 6, maxLength: 6 }),
        fc.constantFrom<2 | 3>(2, 3),
        fc.array(fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, -0, 1, 0.5, 1e-8, 65504, 32768, 32769, 2 ** -880, 2 ** -881, -(2 ** -900), 1e-300)), { minLength: 6, maxLength: 6 }),
        fc.array(mostlyFinite, { minLength: 1, maxLength: 97 }),
        fc.integer({ min: 1, max: 20_000 }),
        (n, dtypes, outDtype, weights, pattern, length) => {
          const inputs = Array.from({ length: n }, (_, k) => Uint16Array.from({ length }, (_, i) => pattern[(i * (k + 3) + k) % pattern.length]!));
          const w = weights.slice(0, n);
          const value = (k: number, code: number) => (dtypes[k] === 3 ? bf16Value(code) : f16Value(code));
          const anyNaN = (i: number) => nanCollision(inputs.map((x, k) => w[k]! * value(k, x[i]!)));
          expect(differences(weightedSumF16With(simd, inputs, w, dtypes, outDtype), weightedSumF16With(js, inputs, w, dtypes, outDtype), 2, anyNaN)).toEqual([]);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("the unrolled fused weighted sum (two to seven inputs of one dtype) equals the JS kernel: F16 and BF16, either output, fast and exact paths", () => {
    const code16 = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x7f80, 0xff80, 0x7fc0, 0x7f81, 0x0001, 0x807f, 0x0080, 0x7f7f, 0x477f, 0x3800, 0x387f));
    const mostlyFinite = fc.oneof(code16, fc.integer({ min: 0x0400, max: 0x7bff }), fc.integer({ min: 0x3000, max: 0x4400 }));
    fc.assert(
      fc.property(
        fc.constantFrom(2, 3, 3, 4, 7),
        fc.constantFrom<2 | 3>(2, 3),
        fc.constantFrom<2 | 3>(2, 3),
        fc.array(fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, -0, 1, 0.5, 65504, 32768, 32769, 2 ** -880, 2 ** -881, 1e-300)), { minLength: 7, maxLength: 7 }),
        fc.array(mostlyFinite, { minLength: 1, maxLength: 97 }),
        fc.integer({ min: 1, max: 20_000 }),
        (n, dtype, outDtype, weights, pattern, length) => {
          const inputs = Array.from({ length: n }, (_, k) => Uint16Array.from({ length }, (_, i) => pattern[(i * (k + 3) + k) % pattern.length]!));
          const w = weights.slice(0, n);
          const dtypes = inputs.map(() => dtype);
          const anyNaN = (i: number) => nanCollision(inputs.map((x, k) => w[k]! * (dtype === 3 ? bf16Value(x[i]!) : f16Value(x[i]!))));
          expect(differences(weightedSumF16With(simd, inputs, w, dtypes, outDtype), weightedSumF16With(js, inputs, w, dtypes, outDtype), 2, anyNaN)).toEqual([]);
        },
      ),
      { numRuns: 80 },
    );
  });

  it("the unrolled fused weighted sum takes the exact path for a group whose Inf or NaN is in an input past the third", () => {
    // Finite codes everywhere but one input past the third, which holds an Inf, a NaN or a −Inf
    // in a few groups of eight.
    for (const dtype of [2, 3] as const) {
      for (const n of [4, 5, 7]) {
        const length = 4099;
        const finite = (k: number, i: number) => (dtype === 2 ? 0x3000 + ((i * 7919 + k * 104_729) % 0x1400) : 0x3c00 + ((i * 7919 + k * 104_729) % 0x0400));
        const inputs = Array.from({ length: n }, (_, k) => Uint16Array.from({ length }, (_, i) => finite(k, i)));
        const specials = dtype === 2 ? [0x7c00, 0x7e00, 0xfc00] : [0x7f80, 0x7fc0, 0xff80];
        for (let i = 5; i < length; i += 397) inputs[n - 1]![i] = specials[i % 3]!;
        const w = [0.3, -0.2, 0.25, 0.1, 0.05, 0.4, -0.15].slice(0, n);
        const dtypes = inputs.map(() => dtype);
        const anyNaN = (i: number) => nanCollision(inputs.map((x, k) => w[k]! * (dtype === 3 ? bf16Value(x[i]!) : f16Value(x[i]!))));
        for (const outDtype of [2, 3] as const) expect(differences(weightedSumF16With(simd, inputs, w, dtypes, outDtype), weightedSumF16With(js, inputs, w, dtypes, outDtype), 2, anyNaN), `${n} inputs of code ${dtype} into ${outDtype}`).toEqual([]);
      }
    }
  });

  it("the staged weighted sum of F32, F16, BF16 and F8 inputs in any mix (one not 16-bit, or an F32 or F8 output) equals the JS kernel, 1–6 inputs", () => {
    const codes = fc.constantFrom<1 | 2 | 3 | 4 | 5>(1, 2, 3, 4, 5);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.array(codes, { minLength: 6, maxLength: 6 }),
        codes,
        fc.array(fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, -0, 1, 0.5, 1e-8, 65504, 1e30)), { minLength: 6, maxLength: 6 }),
        fc.array(f32Bits, { minLength: 1, maxLength: 61 }),
        fc.integer({ min: 1, max: 20_000 }),
        fc.nat(),
        (n, dtypes, outDtype, weights, pattern, length, cut) => {
          // Not the fused 16-bit case: an F32 or F8 input or output somewhere.
          if (dtypes.slice(0, n).every((d) => d === 2 || d === 3) && (outDtype === 2 || outDtype === 3)) dtypes[0] = 1;
          const inputs = patternInputs(dtypes.slice(0, n), length, pattern);
          const params: Record<string, number> = { od: outDtype };
          for (let k = 0; k < n; k++) {
            params[`d${k}`] = dtypes[k]!;
            params[`w${k}`] = weights[k]!;
          }
          const from = cut % length;
          const to = from + ((cut >>> 3) % (length - from + 1));
          const run = (ops: typeof js) => {
            const out = new Uint8Array(length * SIZE[outDtype]).fill(7);
            ops.weightedSumEncoded!([out, ...inputs], from, to, params);
            return out;
          };
          const [a, e] = [run(simd), run(js)];
          // Which NaN a sum of NaNs keeps is not fixed (see differences): any NaN matches any NaN.
          const isNaN8 = (x: number) => (outDtype === 4 ? (x & 0x7f) === 0x7f : (x & 0x7f) > 0x7c);
          if (SIZE[outDtype] === 1) expect(Array.from(a).flatMap((x, i) => (x === e[i] || (isNaN8(x) && isNaN8(e[i]!)) ? [] : [`${i}: got ${x} expected ${e[i]}`])).slice(0, 5)).toEqual([]);
          else expect(differences(a, e, SIZE[outDtype] as 2 | 4, () => true)).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("slerp's sums (dotAndNormsEncoded) of F32, F16, BF16 and F8 pairs, not both 16-bit, equal the JS kernel's bit for bit (the staged path; any range)", () => {
    const codes = fc.constantFrom<1 | 2 | 3 | 4 | 5>(1, 2, 3, 4, 5);
    fc.assert(
      fc.property(codes, codes, fc.array(fc.oneof(f32Bits, fc.integer({ min: 0x3c000000, max: 0x42000000 })), { minLength: 1, maxLength: 61 }), fc.integer({ min: 1, max: 20_000 }), fc.nat(), (c0, c1, pattern, length, cut) => {
        const dtypes: (1 | 2 | 3 | 4 | 5)[] = [c0, c1];
        if ((c0 === 2 || c0 === 3) && (c1 === 2 || c1 === 3)) dtypes[0] = 1;
        const inputs = patternInputs(dtypes, length, pattern);
        const from = cut % length;
        const to = from + ((cut >>> 3) % (length - from + 1));
        const run = (ops: typeof js) => (ops.dotAndNormsEncoded!(inputs, from, to, { d0: dtypes[0]!, d1: dtypes[1]! }) as number[]).map((v) => (Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v));
        expect(run(simd)).toEqual(run(js));
      }),
      { numRuns: 150 },
    );
  });

  it("slerp's sums (dotAndNormsEncoded) of two 16-bit inputs (F16, BF16, mixed) equal the JS kernel's bit for bit: codes read from their high words, subnormal, ±0, Inf and NaN codes, any range", () => {
    const codes16 = fc.constantFrom<2 | 3>(2, 3);
    // Codes are the patterns' high 16 bits: any code, small ones (subnormal in both dtypes), and
    // normal values of either sign mostly without an Inf or NaN in a group of eight (the fast path).
    const normal = fc.tuple(fc.integer({ min: 0x0400, max: 0x7bff }), fc.boolean()).map(([code, negative]) => ((negative ? code | 0x8000 : code) << 16) >>> 0);
    fc.assert(
      fc.property(codes16, codes16, fc.array(fc.oneof({ arbitrary: normal, weight: 4 }, { arbitrary: f32Bits, weight: 1 }), { minLength: 1, maxLength: 61 }), fc.integer({ min: 1, max: 20_000 }), fc.nat(), (c0, c1, pattern, length, cut) => {
        const inputs = patternInputs([c0, c1], length, pattern);
        const from = cut % length;
        const to = from + ((cut >>> 3) % (length - from + 1));
        const run = (ops: typeof js) => (ops.dotAndNormsEncoded!(inputs, from, to, { d0: c0, d1: c1 }) as number[]).map((v) => (Number.isNaN(v) ? "NaN" : Object.is(v, -0) ? "-0" : v));
        expect(run(simd)).toEqual(run(js));
      }),
      { numRuns: 200 },
    );
  });

  it("TIES's windows of several task vectors in one pass (taskVectorWindowsEncoded) equal the JS kernel: counts and lists, two on 16-bit codes (one kernel) and other mixes, windows of every kind, lists too short, any range", () => {
    const codes = fc.constantFrom<1 | 2 | 3 | 4 | 5>(2, 3, 2, 3, 1, 4);
    const normal = fc.tuple(fc.integer({ min: 0x0400, max: 0x7bff }), fc.boolean()).map(([code, negative]) => ((negative ? code | 0x8000 : code) << 16) >>> 0);
    // [lo, hi] in F32 magnitude bits: around typical magnitudes, everything, the top (NaN's
    // included), one bit pattern, none (lo above hi).
    const window = fc.oneof(
      fc.tuple(fc.integer({ min: 0x30000000, max: 0x3f800000 }), fc.integer({ min: 0, max: 0x04000000 })).map(([lo, width]) => [lo, lo + width] as const),
      fc.constantFrom([0, 0xffffffff] as const, [0x3f000000, 0x7fffffff] as const, [0x7f800000, 0xffffffff] as const, [0x3c000000, 0x3c000000] as const, [0x40000000, 0x3f800000] as const),
    );
    fc.assert(
      fc.property(fc.array(codes, { minLength: 3, maxLength: 4 }), fc.array(fc.oneof({ arbitrary: normal, weight: 6 }, { arbitrary: f32Bits, weight: 1 }), { minLength: 1, maxLength: 61 }), fc.integer({ min: 1, max: 20_000 }), fc.nat(), fc.array(window, { minLength: 3, maxLength: 3 }), fc.boolean(), (dtypes, pattern, length, cut, bounds, short) => {
        const inputs = patternInputs(dtypes, length, pattern);
        const m = dtypes.length - 1;
        const from = cut % length;
        const to = from + ((cut >>> 3) % (length - from + 1));
        const params: Record<string, number> = { db: dtypes[0]! };
        for (let k = 0; k < m; k++) {
          params[`d${k}`] = dtypes[k + 1]!;
          params[`lo${k}`] = bounds[k]![0];
          params[`hi${k}`] = bounds[k]![1];
        }
        const room = short ? 5 : length + 8;
        const run = (ops: typeof js) => {
          const lists = Array.from({ length: m }, () => new Uint32Array(room).fill(0xdeadbeef));
          const counts = ops.taskVectorWindowsEncoded!([...inputs, ...lists], from, to, params) as number[];
          return { counts, lists: lists.map((l) => Array.from(l)) };
        };
        expect(run(simd)).toEqual(run(js));
      }),
      { numRuns: 200 },
    );
  });

  it("the F32 weighted sum of 3–6 inputs (fewer run the JS kernel) equals the JS kernel on random bit patterns", () => {
    fc.assert(
      fc.property(fc.integer({ min: 3, max: 6 }), fc.array(fc.double({ min: -3, max: 3, noNaN: true }), { minLength: 6, maxLength: 6 }), fc.array(f32Bits, { minLength: 1, maxLength: 97 }), fc.integer({ min: 1, max: 20_000 }), (n, weights, pattern, length) => {
        const inputs = Array.from({ length: n }, (_, k) => new Float32Array(Uint32Array.from({ length }, (_, i) => pattern[(i * (k + 5) + k) % pattern.length]! >>> 0).buffer));
        const w = weights.slice(0, n);
        const anyNaN = (i: number) => nanCollision(inputs.map((x, k) => w[k]! * x[i]!));
        expect(differences(weightedSumF32With(simd, inputs, w), weightedSumF32With(js, inputs, w), 4, anyNaN)).toEqual([]);
      }),
      { numRuns: 60 },
    );
  });

  it("consensus of 1–6 F32 inputs equals the JS kernel (exponents 0–9, ties, outliers, NaN, ±Inf; the three-input path included)", () => {
    // Values from a small set make ties, flat columns and outliers common (1, 1.2724609375 and
    // 3.368e30: written as 1 − (s − min)·r, the outlier's weight would be 2^-53, not 0); random
    // bits add the rest.
    const chosen = fc.constantFrom(0, 0x80000000, 0x3f800000, 0xbf800000, 0x3fa2e000, 0x722a0dae, 0x40400000, 0x7149f2ca, 0x7f800000, 0xff800000, 0x7fc00000, 0x00000001, 0x3f000000);
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 9 }), fc.array(fc.oneof(chosen, f32Bits), { minLength: 1, maxLength: 97 }), fc.integer({ min: 1, max: 20_000 }), fc.nat(), (n, exponent, pattern, length, cut) => {
        const inputs = Array.from({ length: n }, (_, k) => new Float32Array(Uint32Array.from({ length }, (_, i) => pattern[(i * (k + 3) + k) % pattern.length]! >>> 0).buffer));
        const from = cut % length;
        const to = from + ((cut >>> 3) % (length - from + 1));
        const run = (ops: typeof js) => {
          const out = new Float32Array(length).fill(7);
          ops.consensus!([out, ...inputs], from, to, { exponent });
          return out;
        };
        // Which NaN a column's NaN inputs and Inf − Inf steps produce is not fixed (see differences).
        expect(differences(run(simd), run(js), 4, () => true)).toEqual([]);
      }),
      { numRuns: 150 },
    );
  });

  it.each([
    ["add_difference", "addDifferenceEncoded", "alpha"],
    ["train_difference", "trainDifferenceEncoded", "scale"],
  ] as const)("%s of F32, F16, BF16 and F8 inputs in any mix (not all 16-bit), into F32, F16, BF16 or F8, equals the JS kernel (the staged path)", (_name, op, scalarName) => {
    const codes = fc.constantFrom<1 | 2 | 3 | 4 | 5>(1, 2, 3, 4, 5);
    fc.assert(
      fc.property(
        fc.array(codes, { minLength: 4, maxLength: 4 }),
        fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, -0, 1, 0.5, 1e-8, 65504, 1e30)),
        fc.array(f32Bits, { minLength: 1, maxLength: 61 }),
        fc.integer({ min: 1, max: 20_000 }),
        fc.nat(),
        ([da, db, dc, od], scalar, pattern, length, cut) => {
          const dtypes: (1 | 2 | 3 | 4 | 5)[] = [da!, db!, dc!];
          if (!dtypes.some((d) => d !== 2 && d !== 3) && (od === 2 || od === 3)) dtypes[0] = 1;
          // Every fifth element the same bits in all three (A = B = C: train_difference's zero denominator).
          const inputs = patternInputs(dtypes, length, pattern, (i) => i % 5 === 0);
          const params = { [scalarName]: scalar, d0: dtypes[0]!, d1: dtypes[1]!, d2: dtypes[2]!, od: od! };
          const from = cut % length;
          const to = from + ((cut >>> 3) % (length - from + 1));
          const run = (ops: typeof js) => {
            const out = new Uint8Array(length * SIZE[od!]).fill(7);
            ops[op]!([out, ...inputs], from, to, params);
            return out;
          };
          const [a, e] = [run(simd), run(js)];
          const isNaN8 = (x: number) => (od === 4 ? (x & 0x7f) === 0x7f : (x & 0x7f) > 0x7c);
          if (SIZE[od!] === 1) expect(Array.from(a).flatMap((x, i) => (x === e[i] || (isNaN8(x) && isNaN8(e[i]!)) ? [] : [`${i}: got ${x} expected ${e[i]}`])).slice(0, 5)).toEqual([]);
          else expect(differences(a, e, SIZE[od!] as 2 | 4, () => true)).toEqual([]);
        },
      ),
      { numRuns: 120 },
    );
  });

  it.each([
    ["add_difference", "addDifferenceEncoded", "alpha"],
    ["train_difference", "trainDifferenceEncoded", "scale"],
  ] as const)("%s of three F16/BF16 inputs in any mix, into F16 or BF16, equals the JS kernel (fast and exact paths, NaN, ±Inf, subnormals, overflow, zero denominators; any scalar and range)", (_name, op, scalarName) => {
    const code16 = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0x8000, 0x3c00, 0xbc00, 0x7bff, 0xfbff, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x0001, 0x8001, 0x7f80, 0x7fc0, 0x0080, 0x7f7f));
    const mostlyFinite = fc.oneof(code16, fc.integer({ min: 0x3000, max: 0x4400 }), fc.integer({ min: 0xb000, max: 0xc400 }));
    const alphas = fc.oneof(fc.double({ min: -4, max: 4, noNaN: true }), fc.constantFrom(0, -0, 1, -1, 0.5, 1e-8, 65504, 1e30, 2 ** -130, -(2 ** -140)));
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom<2 | 3>(2, 3), { minLength: 3, maxLength: 3 }),
        fc.constantFrom<2 | 3>(2, 3),
        alphas,
        fc.array(mostlyFinite, { minLength: 1, maxLength: 97 }),
        fc.integer({ min: 1, max: 20_000 }),
        fc.nat(),
        (dtypes, outDtype, scalar, pattern, length, cut) => {
          const inputs = Array.from({ length: 3 }, (_, k) => new Uint8Array(Uint16Array.from({ length }, (_, i) => pattern[(i * (k + 3) + k) % pattern.length]!).buffer));
          const from = cut % length;
          const to = from + ((cut >>> 3) % (length - from + 1));
          const run = (ops: typeof js) => {
            const out = new Uint8Array(2 * length).fill(7);
            ops[op]!([out, ...inputs], from, to, { [scalarName]: scalar, d0: dtypes[0]!, d1: dtypes[1]!, d2: dtypes[2]!, od: outDtype });
            return out;
          };
          // b − c of two NaNs (or Inf − Inf, then + a NaN) may keep either NaN (see differences).
          expect(differences(run(simd), run(js), 2, () => true)).toEqual([]);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("TIES's window of F32, F16 and BF16 inputs equals the JS kernel: counts, the magnitudes written and where it stops writing (random bits, NaN, ±Inf, any window, range and room)", () => {
    const codes16 = fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(0, 0x8000, 0x3c00, 0xbc00, 0x7c00, 0xfc00, 0x7e00, 0x7c01, 0x0001, 0x3c01));
    const bound = fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constantFrom(0, 0x3f800000, 0x7f800000, 0x7fc00000, 0x7fffffff, 0x80000000, 0xffffffff));
    fc.assert(
      fc.property(fc.constantFrom(1, 2, 3), fc.array(f32Bits, { minLength: 1, maxLength: 61 }), fc.array(codes16, { minLength: 1, maxLength: 61 }), fc.integer({ min: 1, max: 20_000 }), bound, bound, fc.nat(), fc.nat(), (code, pattern32, pattern16, length, a, b, cut, roomSeed) => {
        const make = (k: number): Uint8Array =>
          code === 1
            ? new Uint8Array(Uint32Array.from({ length }, (_, i) => pattern32[(i * (k + 3) + k) % pattern32.length]! >>> 0).buffer)
            : new Uint8Array(Uint16Array.from({ length }, (_, i) => pattern16[(i * (k + 3) + k) % pattern16.length]!).buffer);
        const [base, x] = [make(0), make(1)];
        // Mostly narrow windows (a few bins), some wide or empty ones.
        const lo = Math.min(a, b);
        const hi = roomSeed % 3 === 0 ? Math.max(a, b) : Math.min(0xffffffff, lo + (b % 0x40000));
        const from = cut % length;
        const to = from + ((cut >>> 3) % (length - from + 1));
        const room = roomSeed % 5 === 0 ? roomSeed % 40 : to - from;
        const run = (ops: typeof js) => {
          const into = new Uint32Array(room).fill(0xdeadbeef);
          const counts = ops.taskVectorWindowEncoded!([base, x, into], from, to, { db: code, dx: code, lo, hi });
          return { counts, into: Array.from(into) };
        };
        expect(run(simd)).toEqual(run(js));
      }),
      { numRuns: 200 },
    );
  });

  it("TIES's cut in a window list (cutInList) and countEqual equal the JS ops: windows of 1 to 2³² bit patterns, lists longer than a block, ties, any range and rank", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 0xffffffff }), fc.integer({ min: 1, max: 30_000 }), fc.integer({ min: 1, max: 5000 }), fc.nat(), fc.nat(), (widthBits, start, length, distinct, cut, pick) => {
        const width = widthBits === 32 ? 0xffffffff : 2 ** widthBits - 1;
        const lo = Math.min(start, 0xffffffff - width);
        const palette = Array.from({ length: distinct }, (_, i) => (i === 0 ? lo : i === 1 ? lo + width : lo + ((Math.imul(i + pick, 2654435761) >>> 0) % (width + 1))));
        const values = Uint32Array.from({ length }, (_, i) => palette[(Math.imul(i, 40503) + cut) % distinct]!);
        const from = cut % length;
        const to = from + 1 + ((cut >>> 5) % (length - from));
        const need = 1 + (pick % (to - from));
        const params = { lo, hi: lo + width, need };
        expect(simd.cutInList!([values], from, to, params), `[${lo}, ${lo + width}] need ${need} of [${from}, ${to})`).toEqual(js.cutInList!([values], from, to, params));
        expect(simd.countEqual!([values], from, to, { value: values[to - 1]! })).toBe(js.countEqual!([values], from, to, { value: values[to - 1]! }));
      }),
      { numRuns: 150 },
    );
  });

  it("ranges that start and end inside a block write only their own elements", () => {
    const codes = Uint16Array.from({ length: 20_000 }, (_, i) => (i * 2654435761) >>> 16);
    const out = new Float32Array(codes.length).fill(7);
    simd.decode!([new Uint8Array(codes.buffer), out], 8191, 16_390, { dtype: 2 });
    const expected = decodeWith(js, codes, 2);
    expect(out[8190]).toBe(7);
    expect(out[16_390]).toBe(7);
    expect(differences(out.subarray(8191, 16_390), expected.subarray(8191, 16_390), 4)).toEqual([]);
  });
});

describe("kernel selection", () => {
  const saved = process.env.STMERGE_KERNELS;
  const pools: KernelWorkerPool[] = [];
  afterEach(async () => {
    if (saved === undefined) delete process.env.STMERGE_KERNELS;
    else process.env.STMERGE_KERNELS = saved;
    await Promise.all(pools.splice(0).map((p) => p.close()));
  });

  it("an engine that rejects the module (no SIMD) or has no WebAssembly gets no SIMD kernels, so callers keep the JS ones", () => {
    const bytes = Buffer.from(SIMD_KERNELS_WASM_BASE64, "base64");
    // A v128 opcode prefix (0xfd) an engine without SIMD does not know: validate() fails the same way.
    const broken = Buffer.from(bytes);
    broken[broken.indexOf(0xfd)] = 0xff;
    expect(wasmKernelsModule(js, broken.toString("base64"))).toBeUndefined();
    const global = globalThis as { WebAssembly?: unknown };
    const saved = global.WebAssembly;
    try {
      delete global.WebAssembly;
      expect(wasmKernelsModule(js, SIMD_KERNELS_WASM_BASE64)).toBeUndefined();
    } finally {
      global.WebAssembly = saved;
    }
    expect(wasmKernelsModule(js, SIMD_KERNELS_WASM_BASE64)).toBeDefined();
  });

  it("STMERGE_KERNELS=js forces the JavaScript kernels", () => {
    process.env.STMERGE_KERNELS = "js";
    expect(simdKernelsAvailable()).toBe(false);
    delete process.env.STMERGE_KERNELS;
    expect(simdKernelsAvailable()).toBe(hasSimd);
  });

  it.skipIf(!hasSimd)("a SIMD pool's workers run the WebAssembly kernels; a plain pool's do not", async () => {
    const simdPool = new KernelWorkerPool(1, { simd: true });
    const jsPool = new KernelWorkerPool(1);
    pools.push(simdPool, jsPool);
    expect(await simdPool.run(0, { op: "kernelKind", arrays: [], from: 0, to: 0, params: {} })).toBe("wasm-simd");
    await expect(jsPool.run(0, { op: "kernelKind", arrays: [], from: 0, to: 0, params: {} })).rejects.toThrow(/unknown kernel op kernelKind/);
  });

  it("a backend with SIMD and one with simd: false give the same bytes through 2 workers over shared memory (weighted sums, consensus, add and train difference, decode, encode)", async () => {
    const n = 300_001;
    const withSimd = createCpuKernelBackend({ workers: 2 });
    const plain = createCpuKernelBackend({ workers: 2, simd: false });
    try {
      const inputs = [0, 1, 2].map((k) => {
        const bytes = withSimd.allocBytes(n * 2);
        u16(bytes).forEach((_, i, a) => (a[i] = (Math.imul(i + 1, 2654435761 + k * 40503) >>> 17) & 0xffff));
        return { bytes, dtype: "F16" as const };
      });
      const weights = [0.5, 0.3, 0.2];
      const a = await withSimd.weightedSumEncoded!(inputs, weights, "F16");
      const b = await plain.weightedSumEncoded!(inputs, weights, "F16");
      expect(differences(a, b, 2, (i) => nanCollision(inputs.map((x, k) => weights[k]! * f16Value(u16(x.bytes)[i]!))))).toEqual([]);
      // F32 inputs (the staged sum), into F16 and F32, in place in the arena.
      const f32Inputs = inputs.map(({ bytes }) => {
        const decoded = withSimd.allocBytes(n * 4);
        decoded.set(new Uint8Array(decodeWith(js, u16(bytes), 2).buffer));
        return { bytes: decoded, dtype: "F32" as const };
      });
      for (const outDtype of ["F16", "F32"] as const) {
        const staged = await withSimd.weightedSumEncoded!(f32Inputs, weights, outDtype);
        expect(differences(staged, await plain.weightedSumEncoded!(f32Inputs, weights, outDtype), outDtype === "F16" ? 2 : 4, () => true)).toEqual([]);
      }
      // Consensus, add and train difference of three F16 inputs, in place in the arena (a ragged last block staged).
      expect(differences(await withSimd.consensusEncoded!(inputs, 2, "F16"), await plain.consensusEncoded!(inputs, 2, "F16"), 2, () => true)).toEqual([]);
      const [x, y, z] = inputs as [(typeof inputs)[0], (typeof inputs)[0], (typeof inputs)[0]];
      expect(differences(await withSimd.addDifferenceEncoded!(x, y, z, 0.7, "F16"), await plain.addDifferenceEncoded!(x, y, z, 0.7, "F16"), 2, () => true)).toEqual([]);
      expect(differences(await withSimd.trainDifferenceEncoded!(x, y, z, 1.26, "F16"), await plain.trainDifferenceEncoded!(x, y, z, 1.26, "F16"), 2, () => true)).toEqual([]);
      const decodedA = await withSimd.decode(inputs[0]!.bytes, "BF16");
      const decodedB = await plain.decode(inputs[0]!.bytes, "BF16");
      expect(differences(decodedA, decodedB, 4)).toEqual([]);
      expect(differences(await withSimd.encode(decodedA, "F16"), await plain.encode(decodedB, "F16"), 2)).toEqual([]);
      // F8 through the workers: the encoded bytes, and their decode, bit for bit.
      for (const dtype of ["F8_E4M3", "F8_E5M2"] as const) {
        const scaled = withSimd.allocF32(n);
        decodedA.forEach((v, i) => (scaled[i] = v * 2 ** ((i % 40) - 20)));
        const encodedA = await withSimd.encode(scaled, dtype);
        const encodedB = await plain.encode(scaled, dtype);
        expect(byteDifferences(encodedA, encodedB)).toEqual([]);
        const bytes = withSimd.allocBytes(n);
        bytes.set(encodedA);
        expect(differences(await withSimd.decode(bytes, dtype), await plain.decode(bytes, dtype), 4)).toEqual([]);
      }
    } finally {
      await Promise.all([withSimd.close(), plain.close()]);
    }
  });
});
