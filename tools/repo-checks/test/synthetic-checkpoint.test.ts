import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gunzipSync } from "node:zlib";
import { afterAll, describe, expect, it } from "vitest";
import { writeSyntheticCheckpoint } from "../../bench/synthetic-checkpoint.mjs";

// The benchmark input generator: the file it writes must be a valid safetensors file with the
// committed layout's keys and (scaled) shapes, reproducible from its seed, and its F16/BF16 values
// the nearest codes to its F32 values (checked here by distance to the neighbouring codes, not by
// a second copy of its rounding).
const dir = mkdtempSync(join(tmpdir(), "stmerge-synthetic-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Entry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function readSafetensors(path: string): { header: Record<string, Entry>; data: Buffer; metadata: Record<string, string> } {
  const file = readFileSync(path);
  const length = Number(file.readBigUInt64LE(0));
  const { __metadata__: metadata, ...header } = JSON.parse(file.subarray(8, 8 + length).toString("utf8"));
  return { header, data: file.subarray(8 + length), metadata };
}

const f16Value = (h: number) => {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
};
const bf16Value = (h: number) => new Float32Array(new Uint32Array([h << 16]).buffer)[0]!;

describe("tools/bench/synthetic-checkpoint.mjs", () => {
  const scale = 16;
  const write = (name: string, dtype: string, seed: number) => {
    const out = join(dir, name);
    writeSyntheticCheckpoint({ layout: "sd1-ldm", out, dtype, seed, scale });
    return out;
  };
  const f32 = write("f32.safetensors", "F32", 7);
  const f16 = write("f16.safetensors", "F16", 7);

  it("writes the committed layout's keys, dtypes and scaled shapes with contiguous offsets", () => {
    const layout = JSON.parse(gunzipSync(readFileSync(new URL("../../../packages/merge-engine/test/fixtures/layouts/sd1-ldm.json.gz", import.meta.url))).toString("utf8"));
    const rows: [string, number[], string][] = ["clip_l", "vae", "diffuser"].flatMap((c) => layout.components[c]);
    const { header, data, metadata } = readSafetensors(f16);
    expect(Object.keys(header)).toEqual(rows.map(([key]) => key));
    let offset = 0;
    for (const [key, shape, dtype] of rows) {
      const entry = header[key]!;
      const scaled = shape.map((d) => (d > 64 ? Math.floor(d / scale) : d));
      expect(entry.shape).toEqual(scaled);
      expect(entry.dtype).toBe(dtype === "I64" ? "I64" : "F16");
      expect(entry.data_offsets[0]).toBe(offset);
      offset = entry.data_offsets[1];
    }
    expect(data.length).toBe(offset);
    expect(metadata.format).toBe("pt");
    const ids = header["cond_stage_model.transformer.text_model.embeddings.position_ids"]!;
    expect([...new BigInt64Array(data.buffer.slice(data.byteOffset + ids.data_offsets[0], data.byteOffset + ids.data_offsets[1]))].slice(0, 3)).toEqual([0n, 1n, 2n]);
  });

  it("is reproducible from its seed and differs between seeds", () => {
    expect(readFileSync(write("again.safetensors", "F16", 7)).equals(readFileSync(f16))).toBe(true);
    expect(readFileSync(write("other.safetensors", "F16", 8)).equals(readFileSync(f16))).toBe(false);
  });

  it("F16 and BF16 hold the nearest code to the F32 file's value; values look like N(0, 0.05²)", () => {
    const bf16 = write("bf16.safetensors", "BF16", 7);
    const a = readSafetensors(f32);
    const h = readSafetensors(f16);
    const b = readSafetensors(bf16);
    const key = "model.diffusion_model.input_blocks.1.1.proj_in.weight";
    const values = new Float32Array(a.data.buffer.slice(a.data.byteOffset + a.header[key]!.data_offsets[0], a.data.byteOffset + a.header[key]!.data_offsets[1]));
    const halves = new Uint16Array(h.data.buffer.slice(h.data.byteOffset + h.header[key]!.data_offsets[0], h.data.byteOffset + h.header[key]!.data_offsets[1]));
    const brains = new Uint16Array(b.data.buffer.slice(b.data.byteOffset + b.header[key]!.data_offsets[0], b.data.byteOffset + b.header[key]!.data_offsets[1]));
    expect(halves.length).toBe(values.length);
    let sum = 0;
    let squares = 0;
    const notNearest: string[] = [];
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      sum += x;
      squares += x * x;
      for (const [code, value] of [
        [halves[i]!, f16Value],
        [brains[i]!, bf16Value],
      ] as const) {
        const d = Math.abs(value(code) - x);
        // Neighbours in magnitude (same sign): neither is nearer.
        if (Math.abs(value(code + 1) - x) < d || ((code & 0x7fff) !== 0 && Math.abs(value(code - 1) - x) < d)) notNearest.push(`${i}: ${x} → 0x${code.toString(16)}`);
      }
    }
    expect(notNearest.slice(0, 5)).toEqual([]);
    const mean = sum / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.002);
    expect(Math.sqrt(squares / values.length - mean * mean)).toBeCloseTo(0.05, 2);
  });
});
