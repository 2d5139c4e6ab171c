import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../test/safetensors-test-helpers.js";
import { DTYPES, isFloatDType, shapeElementCount, type DType } from "./dtypes.js";
import { decodeToF32, encodeFromF32 } from "./float-codecs.js";
import { createSafetensorsWriter } from "./safetensors-writer.js";

// Live cross-check: the Python safetensors library (safe_open, torch framework) reads a file we
// wrote. Runs only under `pnpm test:oracle`, which sets STMERGE_ORACLE_PYTHON.
const python = process.env.STMERGE_ORACLE_PYTHON;

const READER = `
import json, sys, torch
from safetensors import safe_open
out = {"metadata": None, "tensors": {}}
with safe_open(sys.argv[1], framework="pt") as f:
    out["metadata"] = f.metadata()
    for key in f.keys():
        t = f.get_tensor(key)
        flat = t.reshape(-1)
        if t.is_floating_point():
            f32 = flat.to(torch.float32)
            # NaN payloads differ between conversion paths; any NaN is "nan".
            values = ["nan" if n else format(int(v) & 0xFFFFFFFF, "08x") for v, n in zip(f32.view(torch.int32).tolist(), torch.isnan(f32).tolist())]
        else:
            values = [str(v) for v in flat.tolist()]
        out["tensors"][key] = {"dtype": str(t.dtype), "shape": list(t.shape), "values": values}
print(json.dumps(out))
`;

const TORCH_DTYPE: Record<DType, string> = {
  F64: "torch.float64", F32: "torch.float32", F16: "torch.float16", BF16: "torch.bfloat16", F8_E4M3: "torch.float8_e4m3fn", F8_E5M2: "torch.float8_e5m2",
  I64: "torch.int64", I32: "torch.int32", I16: "torch.int16", I8: "torch.int8", U64: "torch.uint64", U32: "torch.uint32", U16: "torch.uint16", U8: "torch.uint8", BOOL: "torch.bool",
};

const FLOATS = new Float32Array([0, -0, 1, -2.5, 0.1, 65504, 448, -1e-6, Infinity, NaN, 3.14159, 1e4]);

function bytesFor(dtype: DType, count: number): { bytes: Uint8Array; expected: string[] } {
  const values = FLOATS.subarray(0, count);
  if (isFloatDType(dtype)) {
    const bytes = encodeFromF32(values, dtype);
    const decoded = decodeToF32(bytes, dtype);
    const bits = new Uint32Array(decoded.buffer);
    return { bytes, expected: Array.from(decoded, (v, i) => (Number.isNaN(v) ? "nan" : bits[i]!.toString(16).padStart(8, "0"))) };
  }
  const ints = Array.from({ length: count }, (_, i) => (dtype === "BOOL" ? i % 2 : dtype.startsWith("U") ? i * 3 : i * 3 - 5));
  const ctor = { I64: BigInt64Array, U64: BigUint64Array, I32: Int32Array, U32: Uint32Array, I16: Int16Array, U16: Uint16Array, I8: Int8Array, U8: Uint8Array, BOOL: Uint8Array }[dtype as "I32"];
  const typed = dtype === "I64" || dtype === "U64" ? new (ctor as unknown as BigInt64ArrayConstructor)(ints.map(BigInt)) : new ctor(ints);
  return { bytes: new Uint8Array(typed.buffer), expected: ints.map((v) => (dtype === "BOOL" ? (v ? "True" : "False") : String(v))) };
}

describe.runIf(python)("Python safetensors reads what our writer wrote", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  it("every dtype, 0-d and empty tensors, metadata", async () => {
    const path = join(dir, "ours.safetensors");
    const shapes: Record<string, number[]> = { scalar: [], empty: [0, 4] };
    const plan = [
      ...DTYPES.map((dtype) => ({ name: `t.${dtype}`, dtype, shape: [3, 4] })),
      { name: "scalar", dtype: "F32" as DType, shape: shapes.scalar! },
      { name: "empty", dtype: "F16" as DType, shape: shapes.empty! },
    ];
    const data = plan.map((p) => bytesFor(p.dtype, shapeElementCount(p.shape)));
    const sink = createSafetensorsWriter(path);
    await sink.begin(
      plan.map((p, i) => ({ ...p, byteLength: data[i]!.bytes.byteLength })),
      { format: "pt", "stmerge.note": "oracle ✓" },
    );
    // Written in reverse to exercise out-of-order streaming.
    for (let i = plan.length - 1; i >= 0; i--) await sink.write(plan[i]!.name, data[i]!.bytes);
    await sink.commit();

    const read = JSON.parse(execFileSync(python!, ["-c", READER, path], { encoding: "utf8" })) as {
      metadata: Record<string, string>;
      tensors: Record<string, { dtype: string; shape: number[]; values: string[] }>;
    };
    expect(read.metadata).toEqual({ format: "pt", "stmerge.note": "oracle ✓" });
    expect(Object.keys(read.tensors).sort()).toEqual(plan.map((p) => p.name).sort());
    plan.forEach((p, i) => {
      const t = read.tensors[p.name]!;
      expect(t.dtype, p.name).toBe(TORCH_DTYPE[p.dtype]);
      expect(t.shape, p.name).toEqual(p.shape);
      expect(t.values, p.name).toEqual(data[i]!.expected);
    });
  });

  it("a file written past the page cache (direct writes forced: the header, tensors across staging buffers and a partial last block)", async () => {
    const path = join(dir, "direct.safetensors");
    // 9 MiB and odd sizes of F16 and U8: three staging buffers' worth, a tensor straddling two.
    const plan = [
      { name: "a", dtype: "F16" as DType, shape: [3 * 1024 * 1024 + 3] },
      { name: "b", dtype: "U8" as DType, shape: [5] },
      { name: "c", dtype: "F16" as DType, shape: [1024, 1500] },
    ];
    const data = plan.map((p) => {
      const n = shapeElementCount(p.shape);
      const values = Float32Array.from({ length: n }, (_, i) => ((i * 37) % 2001) / 1000 - 1);
      return p.dtype === "U8" ? Uint8Array.from({ length: n }, (_, i) => i * 50) : encodeFromF32(values, p.dtype);
    });
    const sink = createSafetensorsWriter(path, { directWrites: true });
    await sink.begin(plan.map((p, i) => ({ ...p, byteLength: data[i]!.byteLength })), { format: "pt" });
    for (const [i, p] of plan.entries()) await sink.write(p.name, data[i]!);
    await sink.commit();
    // The bytes of each tensor, as Python reads them, hashed there: SHA-256 over the raw tensor bytes.
    const digests = JSON.parse(
      execFileSync(python!, ["-c", "import sys, json, hashlib\nfrom safetensors import safe_open\nwith safe_open(sys.argv[1], framework='numpy') as f:\n    print(json.dumps({k: [str(f.get_tensor(k).dtype), hashlib.sha256(f.get_tensor(k).tobytes()).hexdigest()] for k in f.keys()}))", path], { encoding: "utf8" }),
    ) as Record<string, [string, string]>;
    expect(Object.keys(digests).sort()).toEqual(["a", "b", "c"]);
    plan.forEach((p, i) => {
      expect(digests[p.name]![0], p.name).toBe(p.dtype === "U8" ? "uint8" : "float16");
      expect(digests[p.name]![1], p.name).toBe(createHash("sha256").update(data[i]!).digest("hex"));
    });
  });
});
