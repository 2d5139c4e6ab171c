import { afterAll, describe, expect, it } from "vitest";
import { createCpuKernelBackend } from "./cpu-kernel-backend.js";
import { decodeToF32, encodeFromF32 } from "./float-codecs.js";
import type { DType } from "./dtypes.js";
import type { EncodedTensor, KernelBackend } from "./kernel-backend.js";
import { firstEncodedDifference } from "@stmerge/test-utils";
import { randomValues } from "../test/random-values.js";

function shared(values: Float32Array, backend: KernelBackend): Float32Array {
  const out = backend.allocF32(values.length);
  out.set(values);
  return out;
}

/** TIES's histogram by its definition (kernel-backend's taskVectorHistogram), one element at a time. */
function tiesHistogramReference(base: Float32Array, x: Float32Array, level: number, prefix: number): Uint32Array {
  const hist = new Uint32Array(65536);
  const delta = new Float32Array(1);
  const bits = new Uint32Array(delta.buffer);
  for (let e = 0; e < base.length; e++) {
    delta[0] = x[e]! - base[e]!;
    const m = bits[0]! & 0x7fffffff;
    const bin = m >>> 16;
    if (level === 0) hist[bin]!++;
    else if (bin === prefix) hist[m & 0xffff]!++;
  }
  return hist;
}

/** TIES's window by its definition (kernel-backend's taskVectorWindow): counts above hi, the magnitudes in [lo, hi] in index order. */
function tiesWindowReference(base: Float32Array, x: Float32Array, lo: number, hi: number): { above: number; inside: number[] } {
  const delta = new Float32Array(1);
  const bits = new Uint32Array(delta.buffer);
  let above = 0;
  const inside: number[] = [];
  for (let e = 0; e < base.length; e++) {
    delta[0] = x[e]! - base[e]!;
    const m = bits[0]! & 0x7fffffff;
    if (m > hi) above++;
    else if (m >= lo) inside.push(m);
  }
  return { above, inside };
}

// inlineBelow: 1000 forces the worker path on small arrays, so the tests stay fast while still
// crossing threads; the inline backend computes the same ops on the calling thread.
const pooled = createCpuKernelBackend({ workers: 2, inlineBelow: 1000 });
const pooledJs = createCpuKernelBackend({ workers: 2, inlineBelow: 1000, simd: false });
const inline = createCpuKernelBackend({ workers: 0 });
// The same ops with the tests' arrays in a kernel arena, where the workers' kernels read and
// write them in place (outputs the backend allocates itself, and copies it makes, are not).
const pooledForArena = createCpuKernelBackend({ workers: 2, inlineBelow: 1000 });
const arena = pooledForArena.createArena!()!;
const inArena: KernelBackend = { ...pooledForArena, allocBytes: (n) => arena.allocBytes(n), allocF32: (n) => arena.allocF32(n) };
afterAll(async () => {
  arena.release();
  await pooledForArena.close();
  await pooled.close();
  await pooledJs.close();
  await inline.close();
});

const N = 10_007; // not a multiple of the range split
const a = randomValues(N, 1);
const b = randomValues(N, 2);
const c = randomValues(N, 3);

describe.each([
  ["worker threads", pooled],
  ["worker threads, JavaScript kernels", pooledJs],
  ["inline", inline],
  ["worker threads, arrays in a kernel arena", inArena],
] as const)("CPU kernels (%s)", (_label, backend) => {
  it("describes itself", () => {
    expect(backend.kind).toBe("cpu");
    expect(backend.description).toMatch(/^cpu/);
  });

  it("elementwise ops match a plain loop bit for bit", async () => {
    const sa = shared(a, backend);
    const sb = shared(b, backend);
    const cases: [string, Float32Array, (i: number) => number][] = [
      ["scale", await backend.scale(sa, 0.3), (i) => a[i]! * 0.3],
      ["add", await backend.add(sa, sb), (i) => a[i]! + b[i]!],
      ["sub", await backend.sub(sa, sb), (i) => a[i]! - b[i]!],
      ["lerp", await backend.lerp(sa, sb, 0.25), (i) => a[i]! + 0.25 * (b[i]! - a[i]!)],
      ["abs", await backend.abs(sa), (i) => Math.abs(a[i]!)],
      ["sign", await backend.sign(sa), (i) => Math.sign(a[i]!)],
      ["clamp", await backend.clamp(sa, -1, 2), (i) => Math.min(Math.max(a[i]!, -1), 2)],
      ["weightedSum2", await backend.weightedSum([sa, sb], [0.7, 0.3]), (i) => 0.7 * a[i]! + 0.3 * b[i]!],
      ["weightedSum3", await backend.weightedSum([sa, sb, shared(c, backend)], [0.5, 0.25, 0.25]), (i) => 0.5 * a[i]! + 0.25 * b[i]! + 0.25 * c[i]!],
      ["weightedSum1", await backend.weightedSum([sa], [2]), (i) => 2 * a[i]!],
    ];
    for (const [name, out, expected] of cases) {
      expect(out.length, name).toBe(N);
      for (let i = 0; i < N; i++) if (out[i] !== Math.fround(expected(i))) expect.fail(`${name}[${i}] = ${out[i]}, expected ${Math.fround(expected(i))}`);
    }
  });

  it("writes into `out`, including in place", async () => {
    const sa = shared(a, backend);
    const out = backend.allocF32(N);
    expect(await backend.add(sa, sa, out)).toBe(out);
    expect(out[5]).toBe(Math.fround(a[5]! * 2));
    await backend.scale(out, 0.5, out);
    expect(Array.from(out.subarray(0, 10))).toEqual(Array.from(a.subarray(0, 10)));
  });

  it("handles NaN, Inf and signed zero", async () => {
    const x = shared(new Float32Array([NaN, Infinity, -Infinity, -0, 0, -3]), backend);
    expect(Array.from(await backend.sign(x))).toEqual([NaN, 1, -1, -0, 0, -1]);
    expect(Array.from(await backend.abs(x))).toEqual([NaN, Infinity, Infinity, 0, 0, 3]);
    expect(Array.from(await backend.clamp(x, -1, 1))).toEqual([NaN, 1, -1, -0, 0, -1]);
  });

  it("consensus refuses an exponent that is not an integer from 0 to 2^31 − 1 (its kernels loop over the bits)", async () => {
    const x = shared(a, backend);
    const encoded = { bytes: backend.allocBytes(2 * N), dtype: "F16" as const };
    for (const exponent of [-1, 0.5, 2 ** 31, Number.NaN]) {
      await expect(backend.consensus!([x, x, x], exponent, backend.allocF32(N))).rejects.toMatchObject({ code: "KERNEL_BAD_PARAM" });
      await expect(backend.consensusEncoded!([encoded, encoded], exponent, "F16")).rejects.toMatchObject({ code: "KERNEL_BAD_PARAM" });
    }
    expect(Array.from((await backend.consensus!([x, x, x], 2 ** 31 - 1, backend.allocF32(N))).subarray(0, 4))).toEqual(Array.from(a.subarray(0, 4)));
  });

  it("dot and norm accumulate in F64", async () => {
    const sa = shared(a, backend);
    const sb = shared(b, backend);
    let dot = 0;
    let sq = 0;
    for (let i = 0; i < N; i++) {
      dot += a[i]! * b[i]!;
      sq += a[i]! * a[i]!;
    }
    expect(await backend.dot(sa, sb)).toBeCloseTo(dot, 9);
    expect(await backend.norm(sa)).toBeCloseTo(Math.sqrt(sq), 9);
    expect(await backend.norm(backend.allocF32(0))).toBe(0);
  });

  it("dot, dotAndNorms and dotAndNormsEncoded add in four partials by index mod 4, then (p0 + p1) + (p2 + p3): the SIMD kernel's order", async () => {
    // Products P, t, −P, t, … with t below P's F64 rounding: in index order every P − P cancels
    // and one t survives the last step (Σ = t); by partials, p0 = nP and p2 = −nP absorb every t.
    const big = 65504; // F16's largest finite value
    const tiny = 2 ** -24; // F16's smallest subnormal
    const n = 20; // two groups of eight and a tail of four, ending on a t
    const a = Float32Array.from({ length: n }, (_, i) => (i % 2 === 0 ? big : tiny));
    const b = Float32Array.from({ length: n }, (_, i) => (i % 4 === 2 ? -big : i % 2 === 0 ? big : tiny));
    let inIndexOrder = 0;
    for (let i = 0; i < n; i++) inIndexOrder += a[i]! * b[i]!;
    expect(inIndexOrder).toBe(tiny * tiny);
    const [sa, sb] = [shared(a, backend), shared(b, backend)];
    expect(await backend.dot(sa, sb)).toBe(0);
    expect((await backend.dotAndNorms!(sa, sb))[0]).toBe(0);
    const f16 = (x: Float32Array) => {
      const bytes = backend.allocBytes(2 * n);
      bytes.set(encodeFromF32(x, "F16"));
      return { bytes, dtype: "F16" as const };
    };
    expect((await backend.dotAndNormsEncoded!(f16(a), f16(b)))[0]).toBe(0);
  });

  it("dotAndNormsEncoded gives decode + dotAndNorms's sums bit for bit, for F16, BF16, F32, F8 and mixed pairs, NaN and Inf included", async () => {
    const values = randomValues(N, 11, 300);
    values.set([NaN, Infinity, -Infinity, -0, 1e-7, 70000], 17);
    const encodedAs = (dtype: "F16" | "BF16" | "F32" | "F8_E4M3", data: Float32Array) => {
      const bytes = backend.allocBytes(encodeFromF32(data, dtype).byteLength);
      bytes.set(encodeFromF32(data, dtype));
      return { bytes, dtype };
    };
    const pairs = [["F16", "F16"], ["BF16", "BF16"], ["F16", "BF16"], ["F32", "F16"], ["F8_E4M3", "BF16"]] as const;
    for (const [da, db] of pairs) {
      const x = encodedAs(da, values);
      const y = encodedAs(db, randomValues(N, 12, 2));
      const [ab, aa, bb] = await backend.dotAndNormsEncoded!(x, y);
      const [eab, eaa, ebb] = await backend.dotAndNorms!(shared(decodeToF32(x.bytes, da), backend), shared(decodeToF32(y.bytes, db), backend));
      expect([ab, aa, bb].map((v) => Object.is(v, NaN) || v), `${da} × ${db}`).toEqual([eab, eaa, ebb].map((v) => Object.is(v, NaN) || v));
    }
    // Without NaN the sums are finite numbers, compared exactly.
    const finite = encodedAs("F16", randomValues(N, 13, 300));
    const other = encodedAs("BF16", randomValues(N, 14, 300));
    const got = await backend.dotAndNormsEncoded!(finite, other);
    expect(got.every(Number.isFinite)).toBe(true);
    expect(got).toEqual(await backend.dotAndNorms!(shared(decodeToF32(finite.bytes, "F16"), backend), shared(decodeToF32(other.bytes, "BF16"), backend)));
    // Magnitudes across the whole F16 range: the running sums round, so only the reference's
    // order of additions gives its bits.
    const wideValues = (seed: number) => Float32Array.from(randomValues(N, seed, 1), (v, i) => v * 2 ** (((i * 7919) % 30) - 14));
    const [wa, wb] = [encodedAs("F16", wideValues(15)), encodedAs("F16", wideValues(16))];
    expect(await backend.dotAndNormsEncoded!(wa, wb)).toEqual(await backend.dotAndNorms!(shared(decodeToF32(wa.bytes, "F16"), backend), shared(decodeToF32(wb.bytes, "F16"), backend)));
  });

  it("consensusEncoded gives decode + consensus + encode's bytes (F16, BF16, F32, F8 and mixes, 1–5 inputs; NaN, Inf, ties, outliers)", async () => {
    const choices = [0, -0, 1, -1, 0.5, 1.1, 3, -2.5, 65504, 1e-6, NaN, Infinity, -Infinity];
    // Mostly random values, every seventh column from the small set (ties, flat columns, NaN, Inf).
    const pick = (seed: number) => Float32Array.from(randomValues(N, seed, 4), (v, i) => (i % 7 === 0 ? choices[Math.floor(Math.abs(v) * 9973) % choices.length]! : v));
    const cases: DType[][] = [
      ["F16", "F16", "F16", "F16"],
      ["BF16", "BF16", "BF16", "BF16"],
      ["F16", "BF16", "F32", "F16"],
      ["F32", "F32", "F32", "F32"],
      ["F8_E4M3", "F16", "BF16"],
      ["F16", "F16", "F16", "F16", "F16", "F8_E5M2"],
      ["F16", "F32"],
    ];
    for (const [trial, dtypes] of cases.entries()) {
      const label = dtypes.join(" ");
      const inputDtypes = dtypes.slice(0, -1);
      const outDtype = dtypes.at(-1)!;
      const inputs = inputDtypes.map((dtype, k) => {
        const bytes = backend.allocBytes(encodeFromF32(pick(300 + 10 * trial + k), dtype).byteLength);
        bytes.set(encodeFromF32(pick(300 + 10 * trial + k), dtype));
        return { bytes, dtype };
      });
      const exponent = [4, 1, 0, 3, 2, 4, 5][trial]!;
      const decoded = inputs.map(({ bytes, dtype }) => shared(decodeToF32(bytes, dtype), backend));
      const expected = encodeFromF32(await backend.consensus!(decoded, exponent, backend.allocF32(N)), outDtype);
      const out = backend.allocBytes(expected.byteLength);
      expect(await backend.consensusEncoded!(inputs, exponent, outDtype, out)).toBe(out);
      expect(firstEncodedDifference(out, expected, outDtype), label).toBe(-1);
    }
  });

  it("addDifferenceEncoded gives decode + sub + scale + add + encode's bytes (F16, BF16, F32, F8 and mixes; NaN, Inf, subnormals, negative and huge α)", async () => {
    const choices = [0, -0, 1, -1, 0.5, 3, -2.5, 65504, -65504, 6e-8, 1e-6, NaN, Infinity, -Infinity];
    const pick = (seed: number) => Float32Array.from(randomValues(N, seed, 4), (v, i) => (i % 7 === 0 ? choices[Math.floor(Math.abs(v) * 9973) % choices.length]! : v));
    const cases: [DType, DType, DType, DType, number][] = [
      ["F16", "F16", "F16", "F16", 0.7],
      ["BF16", "BF16", "BF16", "BF16", -1.3],
      ["F16", "BF16", "F16", "BF16", 1],
      ["F16", "F16", "F16", "F16", 1e30],
      ["F32", "F16", "F16", "F16", 0.3],
      ["F16", "F16", "F16", "F32", 0.25],
      ["F8_E4M3", "F16", "BF16", "F8_E5M2", 2],
    ];
    for (const [trial, [da, db, dc, outDtype, alpha]] of cases.entries()) {
      const label = `${da} ${db} ${dc} → ${outDtype}, α ${alpha}`;
      const [a, b, c] = [da, db, dc].map((dtype, k) => {
        const values = encodeFromF32(pick(500 + 10 * trial + k), dtype);
        const bytes = backend.allocBytes(values.byteLength);
        bytes.set(values);
        return { bytes, dtype };
      }) as [EncodedTensor, EncodedTensor, EncodedTensor];
      const [fa, fb, fc] = [a, b, c].map(({ bytes, dtype }) => shared(decodeToF32(bytes, dtype), backend)) as [Float32Array, Float32Array, Float32Array];
      const step = backend.allocF32(N);
      await backend.sub(fb, fc, step);
      await backend.scale(step, alpha, step);
      await backend.add(fa, step, step);
      const expected = encodeFromF32(step, outDtype);
      const out = backend.allocBytes(expected.byteLength);
      expect(await backend.addDifferenceEncoded!(a, b, c, alpha, outDtype, out)).toBe(out);
      expect(firstEncodedDifference(out, expected, outDtype), label).toBe(-1);
    }
  });

  it("trainDifferenceEncoded gives the F64 formula per element, rounded to F32 and encoded (F16, BF16, F32, F8 and mixes; A = B = C columns, NaN, Inf)", async () => {
    const choices = [0, -0, 1, -1, 0.5, 3, -2.5, 65504, 6e-8, NaN, Infinity, -Infinity];
    // Every fifth column A = B = C (a zero denominator), every seventh from the small set.
    const pick = (seed: number, same: Float32Array | undefined) =>
      Float32Array.from(randomValues(N, seed, 4), (v, i) => (same && i % 5 === 0 ? same[i]! : i % 7 === 0 ? choices[Math.floor(Math.abs(v) * 9973) % choices.length]! : v));
    const cases: [DType, DType, DType, DType, number][] = [
      ["F16", "F16", "F16", "F16", 1.8],
      ["BF16", "BF16", "BF16", "BF16", -0.9],
      ["F16", "BF16", "F16", "F32", 1.26],
      ["F32", "F32", "F32", "F16", 0.5],
      ["F8_E4M3", "F16", "BF16", "F8_E5M2", 3],
    ];
    for (const [trial, [da, db, dc, outDtype, scale]] of cases.entries()) {
      const first = pick(700 + 10 * trial, undefined);
      const [a, b, c] = [da, db, dc].map((dtype, k) => {
        const values = encodeFromF32(k === 0 ? first : pick(700 + 10 * trial + k, decodeToF32(encodeFromF32(first, da), da)), dtype);
        const bytes = backend.allocBytes(values.byteLength);
        bytes.set(values);
        return { bytes, dtype };
      }) as [EncodedTensor, EncodedTensor, EncodedTensor];
      const [fa, fb, fc] = [a, b, c].map(({ bytes, dtype }) => decodeToF32(bytes, dtype)) as [Float32Array, Float32Array, Float32Array];
      // SuperMerger's trainDifference, per element in F64.
      const expected = encodeFromF32(
        Float32Array.from(fa, (ai, i) => {
          const diff = fb[i]! - fc[i]!;
          const dist = Math.abs(fb[i]! - ai);
          const denom = dist + Math.abs(diff);
          return denom === 0 ? ai : ai + (scale * diff * dist) / denom;
        }),
        outDtype,
      );
      const out = backend.allocBytes(expected.byteLength);
      expect(await backend.trainDifferenceEncoded!(a, b, c, scale, outDtype, out)).toBe(out);
      expect(firstEncodedDifference(out, expected, outDtype), `${da} ${db} ${dc} → ${outDtype}`).toBe(-1);
    }
  });

  it("the TIES ops on encoded inputs give decode + the F32 ops' bins, bytes and kept counts (F16, BF16, F32, F8 and mixes; NaN, Inf, quotas at the cut)", async () => {
    // Few distinct values: many magnitudes equal to the cut, spread over both thread ranges.
    const choices = [0, -0, 0.5, -0.5, 1, -1, 1.5, 2, -2, 0.25, 3, -3, 0.1, NaN, Infinity, 65504, 1e-6];
    const pick = (seed: number) => Float32Array.from(randomValues(N, seed), (v) => choices[Math.floor(Math.abs(v) * 9973) % choices.length]!);
    const encodedAs = (dtype: DType, data: Float32Array) => {
      const bytes = backend.allocBytes(encodeFromF32(data, dtype).byteLength);
      bytes.set(encodeFromF32(data, dtype));
      return { bytes, dtype, values: shared(decodeToF32(bytes, dtype), backend) };
    };
    const cases: DType[][] = [
      ["F16", "F16", "F16", "F16"],
      ["BF16", "BF16", "BF16", "BF16"],
      ["F16", "BF16", "F32", "F16"],
      ["F32", "F32", "F32", "F32"],
      ["F8_E4M3", "F16", "F16", "BF16"],
      ["F16", "F16", "F16", "F16", "F16"],
    ];
    for (const [trial, dtypes] of cases.entries()) {
      const label = dtypes.join(" ");
      const [baseDtype, ...rest] = dtypes;
      const outDtype = rest.pop()!;
      const base = encodedAs(baseDtype!, pick(100 + trial));
      const models = rest.map((d, k) => encodedAs(d, pick(200 + 10 * trial + k)));
      for (const x of models) {
        // Level 1 within the bin of 1.0.
        for (const [level, prefix] of [[0, 0], [1, 0x3f80]] as const) {
          const expected = tiesHistogramReference(base.values, x.values, level, prefix);
          const actual = new Uint32Array(65536);
          const actualF32 = new Uint32Array(65536);
          const touched = await backend.taskVectorHistogramEncoded!(base, x, level, prefix, actual);
          const touchedF32 = await backend.taskVectorHistogram!(base.values, x.values, level, prefix, actualF32);
          // The bins each says it added to hold every counted bin.
          for (const bins of [touched, touchedF32]) {
            const [lo, hi] = bins ?? [Number.NaN, Number.NaN];
            expect(lo, `${label}: level ${level}, first bin added to`).toBeLessThanOrEqual(expected.findIndex((c) => c > 0));
            expect(hi, `${label}: level ${level}, last bin added to`).toBeGreaterThanOrEqual(expected.findLastIndex((c) => c > 0));
          }
          expect(expected.some((c) => c > 0), `${label}: level ${level} counts something`).toBe(true);
          // Buffer comparison: toEqual over 65536 bins is slow.
          expect(Buffer.from(actual.buffer).equals(Buffer.from(expected.buffer)), `${label}: level ${level}, encoded`).toBe(true);
          expect(Buffer.from(actualF32.buffer).equals(Buffer.from(expected.buffer)), `${label}: level ${level}, F32`).toBe(true);
        }
        // Windows: around 1.0 (many equal magnitudes), everything, nothing, NaN's and Inf's
        // magnitudes only, one bit pattern, and lists too short for what lies in the window.
        const windows: [number, number, number][] = [
          [0x3f000000, 0x3fc00000, N],
          [0, 0xffffffff, N],
          [0x7f800000, 0xffffffff, N],
          [0x3f800000, 0x3f800000, N],
          [0x40000000, 0x3f800000, N],
          [0, 0x3f800000, 100],
          [0x3e000000, 0x40400000, 0],
        ];
        for (const [lo, hi, room] of windows) {
          const expected = tiesWindowReference(base.values, x.values, lo, hi);
          const into = new Uint32Array(room).fill(0xdeadbeef);
          const intoF32 = new Uint32Array(room).fill(0xdeadbeef);
          const found = await backend.taskVectorWindowEncoded!(base, x, lo, hi, into);
          const foundF32 = await backend.taskVectorWindow!(base.values, x.values, lo, hi, intoF32);
          const what = `${label}: window ${lo.toString(16)}–${hi.toString(16)}, room ${room}`;
          const { parts, ...counts } = found;
          expect(counts, what).toEqual({ above: expected.above, inWindow: expected.inside.length });
          expect(foundF32, what).toEqual(found);
          // The parts cover the elements in order, each with its own elements' count in the window.
          expect(parts?.[0]?.from, what).toBe(0);
          expect(parts?.at(-1)?.to, what).toBe(N);
          for (const [i, part] of (parts ?? []).entries()) {
            if (i > 0) expect(part.from, what).toBe(parts![i - 1]!.to);
            expect(part.inWindow, what).toBe(tiesWindowReference(base.values.subarray(part.from, part.to), x.values.subarray(part.from, part.to), lo, hi).inside.length);
          }
          const written = Math.min(room, expected.inside.length);
          expect(Array.from(into.subarray(0, written)), what).toEqual(expected.inside.slice(0, written));
          expect(Buffer.from(intoF32.buffer).equals(Buffer.from(into.buffer)), what).toBe(true);
          // Past what was written, nothing changed.
          expect(into.subarray(written).every((v) => v === 0xdeadbeef), what).toBe(true);
        }
      }
      // Cuts at a magnitude that occurs often (1), at none (Infinity) and keeping all (−1).
      for (const cuts of [models.map(() => 1), models.map((_, k) => (k === 0 ? Infinity : 0.5)), models.map((_, k) => (k === 0 ? -1 : 1))]) {
        const weights = [0.6, 0.4, -0.3].slice(0, models.length);
        // Three quarters of the cut-equal elements: the first thread range holds fewer than that,
        // so the second range's quota depends on the first range's count.
        const quotas = models.map((m, k) => Math.floor(0.75 * m.values.filter((v, e) => Math.abs(Math.fround(v - base.values[e]!)) === cuts[k]).length));
        const out = backend.allocF32(N);
        const expectedKept = await backend.tiesMerge!(base.values, models.map((m) => m.values), weights, cuts, quotas, 0.7, out);
        const bytes = backend.allocBytes(encodeFromF32(out, outDtype).byteLength);
        const kept = await backend.tiesMergeEncoded!(base, models, weights, cuts, quotas, 0.7, outDtype, bytes);
        expect(kept, `${label}: cuts ${cuts}`).toEqual(expectedKept);
        if (cuts[0] === 1) expect(kept[0], `${label}: cut-equal elements are kept`).toBe(quotas[0]);
        expect(Buffer.from(bytes).equals(Buffer.from(encodeFromF32(out, outDtype))), `${label}: cuts ${cuts}`).toBe(true);
      }
    }
  });

  it("taskVectorWindowsEncoded gives each task vector's taskVectorWindowEncoded: counts, lists and parts (two on 16-bit codes, and other mixes)", async () => {
    const f32 = new Float32Array(1);
    const u32 = new Uint32Array(f32.buffer);
    const bitsOf = (v: number) => ((f32[0] = v), u32[0]!);
    const encodedAs = (values: Float32Array, dtype: DType): EncodedTensor => {
      const bytes = backend.allocBytes(encodeFromF32(values, dtype).byteLength);
      bytes.set(encodeFromF32(values, dtype));
      return { bytes, dtype };
    };
    const special = Float32Array.from(randomValues(N, 701), (v, i) => (i % 97 === 5 ? [NaN, Infinity, -Infinity, -0][i % 4]! : v));
    const cases: DType[][] = [
      ["F16", "F16", "F16"],
      ["BF16", "F16", "BF16"],
      ["F16", "F32", "F16"],
      ["F16", "F16", "F16", "BF16"],
      ["F16", "F16", "F16", "F16", "BF16"],
      ["F16", "F16", "F32", "F16", "BF16"],
    ];
    const windowSets = [
      [{ lo: bitsOf(0.5), hi: bitsOf(1.5) }, { lo: bitsOf(1), hi: bitsOf(3) }, { lo: 0, hi: 0xffffffff }, { lo: bitsOf(0.25), hi: bitsOf(2) }],
      [{ lo: 0x7f800000, hi: 0xffffffff }, { lo: bitsOf(2), hi: bitsOf(1) }, { lo: bitsOf(0.25), hi: bitsOf(0.25) }, { lo: 0, hi: bitsOf(0.5) }],
    ];
    for (const dtypes of cases) {
      const [base, ...xs] = dtypes.map((dtype, k) => encodedAs(k === 1 ? special : randomValues(N, 702 + k), dtype));
      for (const set of windowSets) {
        for (const room of [N, 40]) {
          const windowsOf = set.slice(0, xs.length);
          const what = `${dtypes.join("+")}, windows ${JSON.stringify(windowsOf)}, room ${room}`;
          const lists = xs.map(() => new Uint32Array(room).fill(0xdeadbeef));
          const found = await backend.taskVectorWindowsEncoded!(base!, xs, windowsOf, lists);
          for (const [k, x] of xs.entries()) {
            const into = new Uint32Array(room).fill(0xdeadbeef);
            const expected = await backend.taskVectorWindowEncoded!(base!, x, windowsOf[k]!.lo, windowsOf[k]!.hi, into);
            expect(found[k], `${what}, task vector ${k}`).toEqual(expected);
            expect(Array.from(lists[k]!), `${what}, task vector ${k}`).toEqual(Array.from(into));
          }
          // What the caller expects in each window sizes the thread ranges' staging, never the
          // results: far too few (a range that finds more than 4096 runs again), about right,
          // too many, or none for some.
          for (const expectation of [0, 0.3, 1, undefined]) {
            const withExpected = windowsOf.map((w, k) => (k === 1 ? w : { ...w, expected: expectation }));
            const again = xs.map(() => new Uint32Array(room).fill(0xdeadbeef));
            expect(await backend.taskVectorWindowsEncoded!(base!, xs, withExpected, again), `${what}, expected ${expectation}`).toEqual(found);
            again.forEach((list, k) => expect(Array.from(list), `${what}, expected ${expectation}, task vector ${k}`).toEqual(Array.from(lists[k]!)));
          }
        }
      }
    }
  });

  it("the TIES merges take each thread range's quota from spans on those ranges that split the quotas exactly, and count without them", async () => {
    // Magnitudes of 1 (the cut) in every range, so which of them each range keeps matters.
    const choices = [0, 0.5, -1, 1, 2, -2, 1, 0.25, -1];
    const pick = (seed: number) => Float32Array.from(randomValues(N, seed), (v) => choices[Math.floor(Math.abs(v) * 9973) % choices.length]!);
    const base = shared(pick(501), backend);
    const models = [shared(pick(502), backend), shared(pick(503), backend)];
    const encoded = [base, ...models].map((v) => ({ bytes: new Uint8Array(v.buffer, v.byteOffset, v.byteLength), dtype: "F32" as const }));
    const weights = [0.6, 0.4];
    const cuts = [1, 1];
    const isCut = (x: Float32Array, e: number) => Math.abs(Math.fround(x[e]! - base[e]!)) === 1;
    const quotas = models.map((x) => Math.floor(0.4 * x.filter((_, e) => isCut(x, e)).length));
    // The backend's ranges, as a window pass reports them; each keeps its cut-equal elements in
    // index order while the quota lasts (a plain loop).
    const { parts } = await backend.taskVectorWindow!(base, models[0]!, 0, 0xffffffff, new Uint32Array(0));
    const left = [...quotas];
    const spans = parts!.map(({ from, to }) => ({
      from,
      to,
      quotas: models.map((x, k) => {
        let equal = 0;
        for (let e = from; e < to; e++) if (isCut(x, e)) equal++;
        const kept = Math.min(equal, left[k]!);
        left[k]! -= kept;
        return kept;
      }),
    }));
    const merged = async (given?: typeof spans) => {
      const out = backend.allocF32(N);
      const kept = await backend.tiesMerge!(base, models, weights, cuts, quotas, 0.7, out, given);
      const bytes = backend.allocBytes(2 * N);
      const keptEncoded = await backend.tiesMergeEncoded!(encoded[0]!, encoded.slice(1), weights, cuts, quotas, 0.7, "F16", bytes, given);
      expect(keptEncoded).toEqual(kept);
      expect(Buffer.from(bytes).equals(Buffer.from(encodeFromF32(out, "F16")))).toBe(true);
      return { kept, out: Buffer.from(out.buffer, out.byteOffset, out.byteLength) };
    };
    const counted = await merged();
    expect(counted.kept).toEqual(quotas);
    const given = await merged(spans);
    expect(given.kept).toEqual(quotas);
    expect(given.out.equals(counted.out)).toBe(true);
    // Spans off the ranges, or whose quotas do not add up, are not used: the same result.
    const shifted = spans.map((s, i) => ({ ...s, from: i === 0 ? 0 : s.from + 64, to: i === spans.length - 1 ? N : s.to + 64 }));
    const tooMany = spans.map((s) => ({ ...s, quotas: s.quotas.map((q) => q + 1) }));
    for (const ignored of [shifted, tooMany, spans.slice(1)]) expect((await merged(ignored)).out.equals(counted.out)).toBe(true);
    if (spans.length > 1) {
      // Used: the whole quota given to the last range keeps other elements, a different result.
      const last = spans.map((s, i) => ({ ...s, quotas: i === spans.length - 1 ? quotas : quotas.map(() => 0) }));
      const lastCanKeep = models.every((x, k) => {
        let equal = 0;
        for (let e = last.at(-1)!.from; e < N; e++) if (isCut(x, e)) equal++;
        return equal >= quotas[k]!;
      });
      expect(lastCanKeep).toBe(true);
      const moved = await merged(last);
      expect(moved.kept).toEqual(quotas);
      expect(moved.out.equals(counted.out)).toBe(false);
    }
  });

  it("dareMergeEncoded gives decode + dareDrop + combineTaskVectors + encode's bytes, chunk after chunk (F16, BF16, F32, F8 and mixes; NaN, Inf)", async () => {
    const choices = [0, -0, 0.5, -0.5, 1, -1, 1.5, 2, -2, 0.25, 3, -3, 0.1, NaN, Infinity, -Infinity, 65504, 1e-6, 3e-8];
    const pick = (seed: number, special: boolean) => Float32Array.from(randomValues(N, seed), (v) => (special ? choices[Math.floor(Math.abs(v) * 9973) % choices.length]! : v));
    const cases: DType[][] = [
      ["F16", "F16", "F16", "F16"],
      ["BF16", "BF16", "BF16", "BF16"],
      ["F16", "BF16", "F32", "F16"],
      ["F32", "F32", "F32", "F32"],
      ["F16", "F16", "F16", "BF16"],
      ["F8_E4M3", "F16", "F16", "F32"],
      ["F16", "F16", "F16", "F16", "F16"],
      ["BF16", "F16", "BF16"],
      // Six task vectors (the WebAssembly kernel of any number, on staged F32 blocks).
      ["F16", "F16", "BF16", "F16", "F16", "F16", "F16", "F16"],
    ];
    for (const [trial, dtypes] of cases.entries()) {
      const [baseDtype, ...rest] = dtypes;
      const outDtype = rest.pop()!;
      const special = trial % 2 === 1;
      const encode = (dtype: DType, data: Float32Array) => encodeFromF32(data, dtype);
      const baseBytes = encode(baseDtype!, pick(300 + trial, special));
      const modelBytes = rest.map((d, k) => encode(d, pick(400 + 10 * trial + k, special)));
      const weights = [0.6, 0.4, -0.3, 0.2, 0.5, -0.1].slice(0, rest.length);
      const dropRate = [0.5, 0.9, 0, 0.3, 0.9999999999][trial % 5]!;
      const electSign = trial % 3 !== 0;
      const lambda = trial % 4 === 0 ? 0.7 : 1;
      const label = `${dtypes.join(" ")}, p ${dropRate}, elect ${electSign}`;
      const seeds = rest.map((_, k) => (0x12345678 + 7919 * k + 31 * trial) >>> 0);
      // Two chunks of a key, the second drawn from index 4000 on.
      for (const [from, to] of [[0, 4000], [4000, N]] as const) {
        const slice = (bytes: Uint8Array, dtype: DType) => {
          const size = bytes.byteLength / N;
          const copy = backend.allocBytes((to - from) * size);
          copy.set(bytes.subarray(from * size, to * size));
          return { bytes: copy, dtype };
        };
        const base = slice(baseBytes, baseDtype!);
        const models = modelBytes.map((bytes, k) => slice(bytes, rest[k]!));
        const baseF32 = await backend.decode(base.bytes, base.dtype, backend.allocF32(to - from));
        const tasks = await Promise.all(models.map(async (x, k) => ({ x: await backend.decode(x.bytes, x.dtype, backend.allocF32(to - from)), base: baseF32, seed: seeds[k]! })));
        await backend.dareDrop!(tasks, dropRate, from);
        const merged = await backend.combineTaskVectors!(baseF32, tasks.map((t) => t.x), weights, lambda, electSign, backend.allocF32(to - from));
        const expected = encodeFromF32(merged, outDtype);
        const out = backend.allocBytes(expected.byteLength);
        await backend.dareMergeEncoded!(base, models, seeds, from, dropRate, weights, lambda, electSign, outDtype, out);
        expect(firstEncodedDifference(out, expected, outDtype), `${label}: elements ${from}–${to}`).toBe(-1);
      }
    }
  });

  it("dareMergeEncoded split across the threads gives the reference's bytes, draw indices past 2^32 and across a multiple of it included", async () => {
    const n = 3 * 2 ** 18 + 1000;
    const data = (seed: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + seed) * (1 + (i % 97)));
    const bytesOf = (values: Float32Array) => {
      const bytes = backend.allocBytes(2 * n);
      bytes.set(encodeFromF32(values, "F16"));
      return { bytes, dtype: "F16" as const };
    };
    const base = bytesOf(data(1));
    const models = [bytesOf(data(2)), bytesOf(data(3))];
    const seeds = [0x9e3779b9, 17];
    const baseF32 = await backend.decode(base.bytes, "F16", backend.allocF32(n));
    // From index 0; from 2^33 + 8 (block 2); across 2^32 (each thread's range but one stays in a block).
    for (const offset of [0, 2 ** 33 + 8, 2 ** 32 - 2 ** 18 - 5]) {
      const tasks = await Promise.all(models.map(async (x, k) => ({ x: await backend.decode(x.bytes, "F16", backend.allocF32(n)), base: baseF32, seed: seeds[k]! })));
      await backend.dareDrop!(tasks, 0.5, offset);
      const expected = encodeFromF32(await backend.combineTaskVectors!(baseF32, tasks.map((t) => t.x), [0.6, 0.4], 1, false, backend.allocF32(n)), "F16");
      const out = backend.allocBytes(2 * n);
      await backend.dareMergeEncoded!(base, models, seeds, offset, 0.5, [0.6, 0.4], 1, false, "F16", out);
      expect(Buffer.from(out).equals(Buffer.from(expected)), `offset ${offset}`).toBe(true);
    }
    await expect(backend.dareMergeEncoded!(base, models, [1, -1], 0, 0.5, [0.6, 0.4], 1, false, "F16", backend.allocBytes(2 * n))).rejects.toMatchObject({ code: "KERNEL_BAD_PARAM" });
    await expect(backend.dareDrop!([{ x: baseF32, base: baseF32, seed: 1 }], 0.5, 0.5)).rejects.toMatchObject({ code: "KERNEL_BAD_PARAM" });
  });

  it("topKThreshold finds the exact k-th largest magnitude", async () => {
    const sa = shared(a, backend);
    const sorted = Array.from(a, Math.abs).sort((x, y) => y - x);
    for (const k of [1, 2, 10, 500, 5000, N - 1]) {
      const t = await backend.topKThreshold(sa, k);
      expect(t, `k=${k}`).toBe(sorted[k - 1]);
      expect(Array.from(a).filter((v) => Math.abs(v) >= t).length).toBeGreaterThanOrEqual(k);
    }
    expect(await backend.topKThreshold(sa, 0)).toBe(Infinity);
    expect(await backend.topKThreshold(sa, N)).toBe(0);
    // NaNs never count as large; ties at the threshold are allowed.
    const withNaN = shared(new Float32Array([NaN, 3, -3, 1, NaN, 0.5]), backend);
    expect(await backend.topKThreshold(withNaN, 1)).toBe(3);
    expect(await backend.topKThreshold(withNaN, 2)).toBe(3);
    expect(await backend.topKThreshold(withNaN, 3)).toBe(1);
    expect(await backend.topKThreshold(withNaN, 5)).toBe(0);
  });

  it("decode and encode match the synchronous codecs for every float dtype", async () => {
    const values = shared(randomValues(N, 9, 600), backend);
    for (const dtype of ["F16", "BF16", "F8_E4M3", "F8_E5M2", "F32", "F64"] as const) {
      const bytes = await backend.encode(values, dtype);
      expect(Array.from(bytes), dtype).toEqual(Array.from(encodeFromF32(values, dtype)));
      const shBytes = backend.allocBytes(bytes.byteLength);
      shBytes.set(bytes);
      const back = await backend.decode(shBytes, dtype);
      expect(Array.from(back), dtype).toEqual(Array.from(decodeToF32(bytes, dtype)));
    }
  });

  it("decodes integer dtypes and misaligned bytes", async () => {
    const ints = new Int32Array(N).map((_, i) => i - 5000);
    const bytes = backend.allocBytes(N * 4 + 1).subarray(1);
    bytes.set(new Uint8Array(ints.buffer));
    const out = await backend.decode(bytes, "I32");
    expect(out[0]).toBe(-5000);
    expect(out[N - 1]).toBe(N - 1 - 5000);
  });

  it("works on plain (non-shared) arrays", async () => {
    const out = await backend.add(a, b);
    expect(out[3]).toBe(Math.fround(a[3]! + b[3]!));
    expect(Array.from(await backend.encode(a, "BF16"))).toEqual(Array.from(encodeFromF32(a, "BF16")));
  });

  it("rejects mismatched lengths and non-float targets", async () => {
    await expect(backend.add(a, b.subarray(1))).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
    await expect(backend.scale(a, 2, new Float32Array(3))).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
    await expect(backend.encode(a, "I8")).rejects.toMatchObject({ code: "DTYPE_NOT_ENCODABLE", message: "encode: I8 is not a float dtype" });
    // Arguments out of place (a tensor where the dtype goes): one short line, not the tensor's bytes.
    const misplaced = new Uint8Array(1 << 20) as unknown as DType;
    await expect(backend.encode(a, misplaced)).rejects.toMatchObject({ code: "DTYPE_UNKNOWN", message: "cannot encode unknown dtype a Uint8Array of 1048576 elements" });
    await expect(backend.weightedSumEncoded!([{ bytes: new Uint8Array(4), dtype: "F16" }], [1], misplaced)).rejects.toMatchObject({ message: "weightedSumEncoded: a Uint8Array of 1048576 elements is not a float dtype" });
    await expect(backend.weightedSum([a, b], [1])).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
    await expect(backend.decode(new Uint8Array(3), "F16")).rejects.toMatchObject({ code: "KERNEL_LENGTH_MISMATCH" });
  });
});

// The WebAssembly merge kernels of one, three or more task vectors (dareMergeN, tiesMergeN, on
// staged F32 blocks) against the JavaScript kernels: the same bytes and kept counts, in place in
// an arena and copied, for dtype mixes, NaN and ±Inf, cut-equal quotas and thread ranges.
describe("the merge kernels of any number of task vectors, SIMD against JavaScript", () => {
  const choices = [0, -0, 0.5, -0.5, 1, -1, 1.5, 2, -2, 0.25, 3, -3, 0.1, NaN, Infinity, -Infinity, 65504, 1e-6, 3e-8];
  const pick = (seed: number, special: boolean) => Float32Array.from(randomValues(N, seed), (v) => (special ? choices[Math.floor(Math.abs(v) * 9973) % choices.length]! : v));
  const encodedIn = (backend: KernelBackend, dtype: DType, values: Float32Array): EncodedTensor => {
    const bytes = backend.allocBytes(encodeFromF32(values, dtype).byteLength);
    bytes.set(encodeFromF32(values, dtype));
    return { bytes, dtype };
  };
  // [base, task vectors…, output]
  const cases: DType[][] = [
    ["F16", "F16", "F16"],
    ["BF16", "F32", "F16"],
    ["F16", "F16", "F16", "F16", "F16"],
    ["F16", "BF16", "F8_E4M3", "F32", "BF16"],
    ["F32", "F32", "F32", "F32", "F32", "F32"],
    ["BF16", "F16", "F16", "F16", "F16", "F16", "F16", "F8_E5M2"],
  ];
  const simdBackends = [
    ["copied", pooled],
    ["in place", inArena],
  ] as const;

  it.each(simdBackends)("dareMergeEncoded (%s)", async (_where, simd) => {
    for (const [trial, dtypes] of cases.entries()) {
      const [baseDtype, ...rest] = dtypes;
      const outDtype = rest.pop()!;
      const special = trial % 2 === 1;
      const values = [baseDtype!, ...rest].map((_, k) => pick(900 + 10 * trial + k, special));
      const weights = [0.6, 0.4, -0.3, 0.2, 0.5, -0.1].slice(0, rest.length);
      const seeds = rest.map((_, k) => (0x9e3779b9 + 7919 * k + 31 * trial) >>> 0);
      for (const [dropRate, electSign, lambda, offset] of [[0.5, false, 1, 0], [0.3, true, 0.7, 123], [0.9, true, 1, 2 ** 32 - 20_000], [0, false, 1.2, 5]] as const) {
        const label = `${dtypes.join(" ")}, p ${dropRate}, elect ${electSign}, offset ${offset}`;
        const run = async (backend: KernelBackend) => {
          const [base, ...models] = [baseDtype!, ...rest].map((d, k) => encodedIn(backend, d, values[k]!));
          const out = backend.allocBytes(N * (outDtype === "F32" ? 4 : outDtype.startsWith("F8") ? 1 : 2));
          await backend.dareMergeEncoded!(base!, models, seeds, offset, dropRate, weights, lambda, electSign, outDtype, out);
          return out;
        };
        const expected = await run(pooledJs);
        expect(firstEncodedDifference(await run(simd), expected, outDtype), label).toBe(-1);
      }
    }
  });

  it.each(simdBackends)("tiesMergeEncoded and tiesMerge (%s)", async (_where, simd) => {
    for (const [trial, dtypes] of cases.entries()) {
      const [baseDtype, ...rest] = dtypes;
      const outDtype = rest.pop()!;
      // Few distinct values: many magnitudes equal to the cut, in both thread ranges.
      const values = [baseDtype!, ...rest].map((_, k) => pick(950 + 10 * trial + k, true));
      const decoded = [baseDtype!, ...rest].map((d, k) => decodeToF32(encodeFromF32(values[k]!, d), d));
      const weights = [0.6, 0.4, -0.3, 0.2, 0.5, -0.1].slice(0, rest.length);
      for (const cuts of [rest.map(() => 1), rest.map((_, k) => [Infinity, 0.5, -1][k % 3]!), rest.map((_, k) => [0.5, 1, 2][k % 3]!)]) {
        // Three quarters of the cut-equal elements: the first thread range holds fewer than that,
        // so the second range's quota depends on the first range's count.
        const quotas = rest.map((_, k) => Math.floor(0.75 * decoded[k + 1]!.filter((v, e) => Math.abs(Math.fround(v - decoded[0]![e]!)) === cuts[k]).length));
        const label = `${dtypes.join(" ")}, cuts ${cuts}`;
        const run = async (backend: KernelBackend) => {
          const [base, ...models] = [baseDtype!, ...rest].map((d, k) => encodedIn(backend, d, values[k]!));
          const out = backend.allocBytes(N * (outDtype === "F32" ? 4 : outDtype.startsWith("F8") ? 1 : 2));
          const kept = await backend.tiesMergeEncoded!(base!, models, weights, cuts, quotas, 0.7, outDtype, out);
          const f32 = backend.allocF32(N);
          const keptF32 = await backend.tiesMerge!(shared(decoded[0]!, backend), decoded.slice(1).map((x) => shared(x, backend)), weights, cuts, quotas, 0.7, f32);
          return { out, kept, f32, keptF32 };
        };
        const expected = await run(pooledJs);
        const actual = await run(simd);
        if (cuts[0] === 1) expect(expected.kept[0], `${label}: cut-equal elements are kept`).toBe(quotas[0]);
        expect(actual.kept, label).toEqual(expected.kept);
        expect(actual.keptF32, label).toEqual(expected.keptF32);
        expect(firstEncodedDifference(actual.out, expected.out, outDtype), label).toBe(-1);
        expect(Buffer.from(actual.f32.buffer, actual.f32.byteOffset, actual.f32.byteLength).equals(Buffer.from(expected.f32.buffer, expected.f32.byteOffset, expected.f32.byteLength)), `${label}, F32`).toBe(true);
      }
    }
  });
});

describe("worker pool", () => {
  it("runs concurrent jobs and a closed backend refuses work", async () => {
    const backend = createCpuKernelBackend({ workers: 2, inlineBelow: 10 });
    expect(backend.parallelism).toBe(2);
    expect(backend.description).toBe("cpu (2 worker threads)");
    const x = shared(a, backend);
    const results = await Promise.all([backend.scale(x, 2), backend.scale(x, 3), backend.dot(x, x)]);
    expect((results[0] as Float32Array)[7]).toBe(Math.fround(a[7]! * 2));
    expect((results[1] as Float32Array)[7]).toBe(Math.fround(a[7]! * 3));
    await backend.close();
    await expect(backend.scale(x, 2)).rejects.toMatchObject({ code: "KERNEL_CLOSED" });
  });
});

// LoRA's low-rank product: the WebAssembly kernel (four accumulators of four columns, then four,
// then one) and the JavaScript one against a plain loop of the definition, bit for bit: zeros in
// `up` skipped (so 0 · Inf adds nothing), NaN and ±Inf in `down`, widths that leave each tail, a
// row offset, rows split across the threads, arrays copied and in an arena.
describe("addLowRankProduct, SIMD and JavaScript against the definition", () => {
  /** w[(rowOffset + i)·cols + j] += fround(factor · Σ_p fround(up[i, p] · down[p, j])), p in order from +0, skipping up[i, p] = ±0. */
  const definition = (w: Float32Array, up: Float32Array, down: Float32Array, rows: number, rank: number, cols: number, factor: number, rowOffset: number) => {
    for (let i = 0; i < rows; i++) {
      for (let j = 0; j < cols; j++) {
        let sum = 0;
        for (let p = 0; p < rank; p++) if (up[i * rank + p] !== 0) sum = Math.fround(sum + Math.fround(up[i * rank + p]! * down[p * cols + j]!));
        const at = (rowOffset + i) * cols + j;
        w[at] = Math.fround(w[at]! + Math.fround(factor * sum));
      }
    }
  };
  const backends = [
    ["SIMD, copied", pooled],
    ["SIMD, in place", inArena],
    ["JavaScript", pooledJs],
    ["inline", inline],
  ] as const;
  it.each(backends)("%s", async (_label, backend) => {
    const shapes = [
      { rows: 300, rank: 8, cols: 37, rowOffset: 3 },
      { rows: 64, rank: 32, cols: 320, rowOffset: 0 },
      { rows: 5, rank: 1, cols: 3, rowOffset: 1 },
      { rows: 1200, rank: 4, cols: 19, rowOffset: 7 },
    ];
    for (const [trial, { rows, rank, cols, rowOffset }] of shapes.entries()) {
      const special = trial % 2 === 1;
      const upValues = Float32Array.from(randomValues(rows * rank, 60 + trial), (v, i) => (i % 7 === 3 ? (i % 2 ? 0 : -0) : v));
      const downValues = Float32Array.from(randomValues(rank * cols, 70 + trial), (v, i) => (special && i % 53 === 11 ? [NaN, Infinity, -Infinity][i % 3]! : v));
      const wValues = randomValues((rowOffset + rows + 2) * cols, 80 + trial);
      const factor = [0.75, 1 / 3, -1.1, 2][trial]!;
      const expected = Float32Array.from(wValues);
      definition(expected, upValues, downValues, rows, rank, cols, factor, rowOffset);
      const w = shared(wValues, backend);
      await backend.addLowRankProduct!(w, shared(upValues, backend), shared(downValues, backend), { rows, rank, cols, rowOffset }, factor);
      const what = `${rows}×${rank}×${cols} from row ${rowOffset}`;
      expect(Buffer.from(w.buffer, w.byteOffset, w.byteLength).equals(Buffer.from(expected.buffer)), what).toBe(true);
      if (special) expect(w.some((v) => !Number.isFinite(v)), `${what}: NaN or ±Inf reaches w`).toBe(true);
    }
  });
});
