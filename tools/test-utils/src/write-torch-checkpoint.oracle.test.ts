import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { writeTorchCheckpoint } from "./write-torch-checkpoint.js";

const python = process.env.STMERGE_ORACLE_PYTHON ?? "python3";
const dir = mkdtempSync(join(tmpdir(), "stmerge-torch-writer-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("writeTorchCheckpoint (oracle: real torch.load)", () => {
  it("writes a checkpoint torch.load(weights_only=True) reads back exactly", async () => {
    const path = join(dir, "demo.ckpt");
    await writeTorchCheckpoint(
      path,
      [
        { name: "model.diffusion_model.out.2.weight", dtype: "F32", shape: [2, 3], data: new Uint8Array(new Float32Array([1, 2, 3, 4, 5, -6.5]).buffer) },
        { name: "cond_stage_model.transformer.text_model.embeddings.position_ids", dtype: "I64", shape: [1, 3], data: new Uint8Array(new BigInt64Array([0n, 1n, 2n]).buffer) },
        { name: "half", dtype: "F16", shape: [2], data: new Uint8Array(new Uint16Array([0x3c00, 0xc000]).buffer) },
        { name: "scalar", dtype: "F32", shape: [], data: new Uint8Array(new Float32Array([7]).buffer) },
      ],
      { global_step: 1234, large: 5_000_000_000 },
    );
    const script = `
import json, sys, torch
d = torch.load(sys.argv[1], weights_only=True)
sd = d["state_dict"]
print(json.dumps({"keys": list(sd.keys()), "values": {k: v.tolist() for k, v in sd.items()}, "dtypes": {k: str(v.dtype) for k, v in sd.items()}, "global_step": d["global_step"], "large": d["large"]}))
`;
    const result = JSON.parse(execFileSync(python, ["-c", script, path], { encoding: "utf8" }));
    expect(result.keys).toEqual(["model.diffusion_model.out.2.weight", "cond_stage_model.transformer.text_model.embeddings.position_ids", "half", "scalar"]);
    expect(result.values["model.diffusion_model.out.2.weight"]).toEqual([[1, 2, 3], [4, 5, -6.5]]);
    expect(result.values["cond_stage_model.transformer.text_model.embeddings.position_ids"]).toEqual([[0, 1, 2]]);
    expect(result.values.half).toEqual([1, -2]);
    expect(result.values.scalar).toBe(7);
    expect(result.dtypes.half).toBe("torch.float16");
    expect(result.global_step).toBe(1234);
    expect(result.large).toBe(5_000_000_000);
  });
});
