import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createCpuKernelBackend } from "@stmerge/core-tensors";
import { describe, expect, it } from "vitest";
import { tempDir, writeTinyModel } from "@stmerge/test-utils";
import { parseManifest } from "../manifest/load-manifest.js";
import { runMerge } from "./run-merge.js";

const python = process.env.STMERGE_ORACLE_PYTHON;

// PyTorch reads our merge output with safetensors and redoes the merge its own way (the
// accumulator of tools/bench/torch_merge.py); both results must agree within 1 F16 ulp.
const SCRIPT = `
import json, sys, torch
from safetensors import safe_open
from safetensors.torch import load_file
out, specs = sys.argv[1], sys.argv[2:]
acc = None
for spec in specs:
    path, w = spec.rsplit(":", 1); w = float(w)
    sd = load_file(path)
    if acc is None:
        acc = {k: v.to(torch.float32) * w if v.is_floating_point() else v.clone() for k, v in sd.items()}
    else:
        for k, v in sd.items():
            if k in acc and v.is_floating_point(): acc[k].add_(v.to(torch.float32), alpha=w)
ours = load_file(out)
with safe_open(out, "pt") as f: meta = f.metadata()
res = {"keys_equal": sorted(ours) == sorted(acc), "ulps": {}, "recipe": json.loads(meta["sd_merge_recipe"])}
for k, v in ours.items():
    ref = acc[k]
    if v.dtype == torch.float16:
        a = v.view(torch.int16).to(torch.int32); b = ref.to(torch.float16).view(torch.int16).to(torch.int32)
        a = torch.where(a < 0, -(a & 0x7fff), a); b = torch.where(b < 0, -(b & 0x7fff), b)
        res["ulps"][k] = int((a - b).abs().max()) if a.numel() else 0
    elif v.is_floating_point():
        res["ulps"][k] = 0 if torch.allclose(v.double(), ref.double(), rtol=1e-6, atol=1e-7) else 999
    else:
        res["ulps"][k] = 0 if torch.equal(v, ref) else 999
print(json.dumps(res))
`;

describe.runIf(python)("merge output read by PyTorch", () => {
  it("loads in safetensors and matches a torch accumulator merge within 1 F16 ulp", async () => {
    const dir = tempDir();
    const weights = [0.5, 0.3, 0.2];
    for (let i = 0; i < 3; i++) await writeTinyModel(join(dir, `m${i}.safetensors`), { seed: i + 1 });
    const manifest = parseManifest(JSON.stringify({ models: weights.map((w, i) => ({ path: `m${i}.safetensors`, weight: w })), output: "out.safetensors", prune: false }), join(dir, "m.json"));
    const kernels = createCpuKernelBackend({ workers: 2 });
    const r = await runMerge(manifest, { kernels });
    await kernels.close();
    writeFileSync(join(dir, "check.py"), SCRIPT);
    const res = JSON.parse(execFileSync(python!, [join(dir, "check.py"), r.outputPath, ...weights.map((w, i) => `${join(dir, `m${i}.safetensors`)}:${w}`)], { encoding: "utf8" })) as { keys_equal: boolean; ulps: Record<string, number>; recipe: { algorithm: string } };
    expect(res.keys_equal).toBe(true);
    // Keys the plan copies from model 0 (schedule buffers, EMA counters) are averaged by the torch script.
    const merged = r.plan.entries.filter((e) => e.action === "merge").map((e) => e.key);
    expect(merged.length).toBeGreaterThan(5);
    expect(Math.max(...merged.map((k) => res.ulps[k]!))).toBeLessThanOrEqual(1);
    expect(res.recipe.algorithm).toBe("weighted_sum");
  });
});
