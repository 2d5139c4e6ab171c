#!/usr/bin/env node
// Writes a full-size synthetic safetensors checkpoint with the real key layout of a public model
// architecture (the compact layouts committed at packages/merge-engine/test/fixtures/layouts) and
// seeded pseudo-random values: N(0, 0.05²) floats, arange for integer tensors. Deterministic: the
// same layout, dtype, seed and scale give the same bytes (each tensor has its own stream, derived
// from the seed and the tensor's index). Benchmarks generate their inputs with it once into
// <repo>/.bench; nothing outside the repo is read.
//
// usage: node tools/bench/synthetic-checkpoint.mjs LAYOUT OUT.safetensors [--dtype F16|BF16|F32]
//          [--seed N] [--components diffuser,clip_l,vae] [--scale S]
// LAYOUT: a layout name (sd1-ldm, sdxl-sgm, ...) or a path to a .json.gz in the same format.
// --components: default all but ema and scheduler. --scale S divides every dimension larger than
// 64 by S (a small model with the same keys, for a quick run).
import { closeSync, openSync, readFileSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

const layoutsDir = resolve(dirname(fileURLToPath(import.meta.url)), "../../packages/merge-engine/test/fixtures/layouts");
const FLOAT_SIZE = { F16: 2, BF16: 2, F32: 4 };
const INT_SIZE = { I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1 };
const CHUNK_ELEMENTS = 1 << 22;

/** The compact layout {identifier, components: {name: [[key, shape, dtype], ...]}} by name or path. */
export function readLayout(layout) {
  const file = layout.endsWith(".json.gz") ? layout : join(layoutsDir, `${layout}.json.gz`);
  return JSON.parse(gunzipSync(readFileSync(file)).toString("utf8"));
}

// 4097 quantiles of the standard normal (Acklam's rational approximation of the inverse CDF,
// relative error < 1.2e-9), so a value costs one table lookup and one interpolation.
const NORMAL_TABLE = (() => {
  const a = [-39.69683028665376, 220.9460984245205, -275.9285104469687, 138.357751867269, -30.66479806614716, 2.506628277459239];
  const b = [-54.47609879822406, 161.5858368580409, -155.6989798598866, 66.80131188771972, -13.28068155288572];
  const c = [-0.007784894002430293, -0.3223964580411365, -2.400758277161838, -2.549732539343734, 4.374664141464968, 2.938163982698783];
  const d = [0.007784695709041462, 0.3224671290700398, 2.445134137142996, 3.754408661907416];
  const inverse = (p) => {
    if (p < 0.02425) {
      const q = Math.sqrt(-2 * Math.log(p));
      return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
    }
    if (p > 1 - 0.02425) return -inverse(1 - p);
    const q = p - 0.5;
    const r = q * q;
    return ((((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q) / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  };
  const t = new Float64Array(4097);
  for (let i = 0; i <= 4096; i++) t[i] = inverse((i + 0.5) / 4097);
  return t;
})();

/** splitmix32-style mixer: a well-spread 32-bit state for each tensor from (seed, index). */
function mix32(x) {
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d);
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Fills `out` with N(0, std²) values from a xorshift32 stream; returns the next state. */
function fillNormal(out, state, std) {
  let s = state | 0;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const u = (s >>> 0) * (4096 / 4294967296);
    const j = u | 0;
    const lo = NORMAL_TABLE[j];
    out[i] = (lo + (NORMAL_TABLE[j + 1] - lo) * (u - j)) * std;
  }
  return s;
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
/** F32 bits → F16 bits, round to nearest even (finite inputs; overflow saturates to ±inf). */
function toF16(bits) {
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  let mant = bits & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    const rest = mant & ((1 << shift) - 1);
    let h = mant >>> shift;
    if (rest > half || (rest === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** Writes the checkpoint to `out` (through a temp file beside it, renamed into place). */
export function writeSyntheticCheckpoint({ layout, out, dtype = "F16", seed = 0, components, scale = 1 }) {
  if (!(dtype in FLOAT_SIZE)) throw new Error(`--dtype must be F16, BF16 or F32, not ${dtype}`);
  const parsed = readLayout(layout);
  const pick = components ?? Object.keys(parsed.components).filter((c) => c !== "ema" && c !== "scheduler");
  const entries = [];
  for (const c of pick) {
    const rows = parsed.components[c];
    if (!rows) throw new Error(`layout ${parsed.identifier} has no component ${c}`);
    for (const [key, shape0, layoutDtype] of rows) {
      const shape = shape0.map((d) => (d > 64 ? Math.max(1, Math.floor(d / scale)) : d));
      const n = shape.reduce((p, d) => p * d, 1);
      const type = layoutDtype in INT_SIZE ? layoutDtype : dtype;
      entries.push({ key, type, shape, n, bytes: n * (INT_SIZE[type] ?? FLOAT_SIZE[type]) });
    }
  }
  const header = {};
  let offset = 0;
  for (const e of entries) {
    header[e.key] = { dtype: e.type, shape: e.shape, data_offsets: [offset, offset + e.bytes] };
    offset += e.bytes;
  }
  header.__metadata__ = { format: "pt", synthetic: `stmerge tools/bench/synthetic-checkpoint.mjs ${parsed.identifier} seed ${seed}` };
  let json = Buffer.from(JSON.stringify(header));
  json = Buffer.concat([json, Buffer.alloc((8 - (json.length % 8)) % 8, 0x20)]);
  const temp = join(dirname(out), `.${basename(out)}.tmp-${process.pid}`);
  const fd = openSync(temp, "w");
  try {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    writeSync(fd, prefix);
    writeSync(fd, json);
    const values = new Float32Array(CHUNK_ELEMENTS);
    const bytes = Buffer.allocUnsafe(CHUNK_ELEMENTS * 8);
    for (const [index, e] of entries.entries()) {
      let state = mix32(Math.imul(seed, 0x9e3779b9) ^ mix32(index + 1)) || 1;
      for (let start = 0; start < e.n; start += CHUNK_ELEMENTS) {
        const count = Math.min(CHUNK_ELEMENTS, e.n - start);
        if (e.type in INT_SIZE) {
          for (let i = 0; i < count; i++) {
            const v = e.type === "BOOL" ? (start + i) & 1 : start + i;
            if (e.type === "I64") bytes.writeBigInt64LE(BigInt(v), i * 8);
            else bytes.writeIntLE(v & (e.type === "I32" ? 0x7fffffff : e.type === "I16" ? 0x7fff : 0x7f), i * INT_SIZE[e.type], INT_SIZE[e.type]);
          }
          writeSync(fd, bytes, 0, count * INT_SIZE[e.type]);
          continue;
        }
        const v = values.subarray(0, count);
        state = fillNormal(v, state, 0.05);
        if (e.type === "F32") {
          writeSync(fd, new Uint8Array(v.buffer, 0, count * 4));
        } else {
          const half = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
          const vb = new Uint32Array(v.buffer, 0, count);
          if (e.type === "F16") for (let i = 0; i < count; i++) half[i] = toF16(vb[i]);
          else for (let i = 0; i < count; i++) half[i] = (vb[i] + 0x7fff + ((vb[i] >>> 16) & 1)) >>> 16;
          writeSync(fd, bytes, 0, count * 2);
        }
      }
    }
    closeSync(fd);
    renameSync(temp, out);
  } catch (error) {
    closeSync(fd);
    rmSync(temp, { force: true });
    throw error;
  }
  return { tensors: entries.length, bytes: 8 + json.length + offset };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const option = (name, fallback) => {
    const i = args.indexOf(name);
    if (i < 0) return fallback;
    const value = args[i + 1];
    args.splice(i, 2);
    return value;
  };
  const dtype = option("--dtype", "F16");
  const seed = Number(option("--seed", "0"));
  const comps = option("--components", "");
  const scale = Number(option("--scale", "1"));
  const [layout, out] = args;
  if (!layout || !out || !Number.isInteger(seed) || !(scale >= 1)) {
    process.stderr.write("usage: synthetic-checkpoint.mjs LAYOUT OUT.safetensors [--dtype F16|BF16|F32] [--seed N] [--components a,b] [--scale S]\n");
    process.exit(2);
  }
  const r = writeSyntheticCheckpoint({ layout, out, dtype, seed, components: comps ? comps.split(",") : undefined, scale });
  process.stdout.write(`${out}: ${r.tensors} tensors, ${(r.bytes / 1e9).toFixed(2)} GB\n`);
}
