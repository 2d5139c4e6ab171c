import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFromF32, writeSafetensors } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

const python = process.env.STMERGE_ORACLE_PYTHON;

// Python's hashlib hashes every file and the safetensors library reads the merge's header and
// tensors: the ancestry must be keyed by the inputs' true SHA-256 and the output's reported
// SHA-256 must be the file's, although the header was written last over placeholders.
const SCRIPT = `
import hashlib, json, sys
from safetensors import safe_open
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""): h.update(block)
    return h.hexdigest()
out, inputs = sys.argv[1], sys.argv[2:]
with safe_open(out, "pt") as f:
    meta = f.metadata()
    tensors = {k: f.get_tensor(k).float().abs().sum().item() for k in f.keys()}
print(json.dumps({"inputs": [sha(p) for p in inputs], "output": sha(out), "ancestry": sorted(json.loads(meta["sd_merge_models"])), "recipe": [m["hash"] for m in json.loads(meta["sd_merge_recipe"])["models"]], "tensors": len(tensors)}))
`;

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe.runIf(python)("a merge of unhashed inputs, read by Python", () => {
  it("hashlib agrees with every SHA-256 recorded, and safetensors reads the rewritten header", async () => {
    const dir = mkdtempSync(join(tmpdir(), "stmerge-oracle-input-hashes-"));
    dirs.push(dir);
    const layout: [string, number[]][] = [
      ["model.diffusion_model.input_blocks.0.0.weight", [320, 4, 3, 3]],
      ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [320, 768]],
      ["model.diffusion_model.out.2.bias", [4]],
      ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [768]],
    ];
    const files = ["a", "b"].map((n) => join(dir, `${n}.safetensors`));
    for (const [i, f] of files.entries()) {
      const order = i === 0 ? layout : [...layout].reverse();
      await writeSafetensors(f, order.map(([name, shape], k) => ({ name, dtype: "F16" as const, shape, data: encodeFromF32(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, e) => Math.cos(i + k + e / 97)), "F16") })));
    }
    writeFileSync(join(dir, "m.json"), JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.6 }, { path: "b.safetensors", weight: 0.4 }], output: "out.safetensors" }));
    const io = memoryIo({ env: { STMERGE_CACHE: join(dir, "cache.json"), STMERGE_NO_BANNER: "1" }, cwd: dir });
    expect(await runCli(["merge", "-m", "m.json", "--device", "cpu", "--no-cache", "--json"], io), io.err()).toBe(0);
    const doc = JSON.parse(io.out()) as { output: { sha256: string }; models: { sha256: string }[] };
    writeFileSync(join(dir, "check.py"), SCRIPT);
    const res = JSON.parse(execFileSync(python!, [join(dir, "check.py"), join(dir, "out.safetensors"), ...files], { encoding: "utf8" })) as { inputs: string[]; output: string; ancestry: string[]; recipe: string[]; tensors: number };
    expect(res.tensors).toBe(layout.length);
    expect(res.recipe).toEqual(res.inputs);
    expect(res.ancestry).toEqual([...res.inputs].sort());
    expect(doc.models.map((m) => m.sha256)).toEqual(res.inputs);
    expect(doc.output.sha256).toBe(res.output);

    // A parent whose own ancestry already lists model a: the final header is shorter than the
    // reserved one (one entry for a, not two) and is padded with spaces up to the same data start.
    const parent = join(dir, "c.safetensors");
    const ancestry = { [res.inputs[0]!]: { name: "a as c remembers it", sd_merge_recipe: null } };
    await writeSafetensors(parent, layout.map(([name, shape]) => ({ name, dtype: "F16" as const, shape, data: new Uint8Array(shape.reduce((a, b) => a * b, 2)) })), { sd_merge_models: JSON.stringify(ancestry) });
    writeFileSync(join(dir, "m2.json"), JSON.stringify({ models: [{ path: "a.safetensors", weight: 0.5 }, { path: "c.safetensors", weight: 0.5 }], output: "out2.safetensors" }));
    const io2 = memoryIo({ env: { STMERGE_CACHE: join(dir, "cache.json"), STMERGE_NO_BANNER: "1" }, cwd: dir });
    expect(await runCli(["merge", "-m", "m2.json", "--device", "cpu", "--no-cache", "--json"], io2), io2.err()).toBe(0);
    const doc2 = JSON.parse(io2.out()) as { output: { sha256: string } };
    const res2 = JSON.parse(execFileSync(python!, [join(dir, "check.py"), join(dir, "out2.safetensors"), files[0]!, parent], { encoding: "utf8" })) as typeof res;
    expect(res2.tensors).toBe(layout.length);
    expect(res2.ancestry).toEqual([...res2.inputs].sort());
    expect(doc2.output.sha256).toBe(res2.output);
  });
});
