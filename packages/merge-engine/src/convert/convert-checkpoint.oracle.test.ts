import { execFileSync } from "node:child_process";
import { copyFile, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCheckpoint } from "./convert-checkpoint.js";

// Live cross-check: PyTorch loads the original with torch.load(weights_only=True) and
// safetensors loads our output; every tensor must be torch.equal (or within the cast for fp16).
// Runs only under `pnpm test:oracle`, which sets STMERGE_ORACLE_PYTHON.
const python = process.env.STMERGE_ORACLE_PYTHON;
const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../../safe-pickle/test/fixtures");

const CHECK = `
import json, sys, torch
from safetensors import safe_open
original, converted, wrapper, precision = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
ck = torch.load(original, weights_only=True, map_location="cpu")
sd = ck[wrapper] if wrapper else ck
sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
out = {"missing": [], "extra": [], "different": []}
with safe_open(converted, framework="pt") as f:
    keys = set(f.keys())
    out["metadata"] = f.metadata()
    for k, v in sd.items():
        if k not in keys:
            out["missing"].append(k); continue
        t = f.get_tensor(k)
        want = v.contiguous()
        if precision == "fp16" and want.is_floating_point():
            want = want.to(torch.float16)
        if t.dtype != want.dtype or t.shape != want.shape or not torch.equal(t, want):
            out["different"].append(k)
    out["extra"] = sorted(keys - set(sd))
print(json.dumps(out))
`;

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "convert-oracle-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe.runIf(python)("convert output read by PyTorch/safetensors", () => {
  it.each([
    ["views_zip.pt", "", "keep"],
    ["views_legacy.pt", "", "keep"],
    ["views_zip.pt", "", "fp16"],
    ["vae.pt", "state_dict", "keep"],
    ["upscaler.pth", "params_ema", "keep"],
    ["lora.pt", "", "keep"],
    ["dataparallel.pth", "model", "keep"],
  ])("%s (%s, %s)", async (name, wrapper, precision) => {
    const input = join(dir, `${precision}-${name}`);
    await copyFile(join(FIXTURES, name), input);
    const result = await convertCheckpoint(input, { precision: precision as "keep" | "fp16" });
    const report = JSON.parse(execFileSync(python!, ["-c", CHECK, input, result.output, wrapper, precision], { encoding: "utf8" }));
    expect(report).toMatchObject({ missing: [], extra: [], different: [] });
    expect(report.metadata["stmerge.source_sha256"]).toBe(result.inputSha256);
  });
});
