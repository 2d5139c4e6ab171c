import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "tsup";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "../test/safetensors-test-helpers.js";

// The worker threads run code serialised from functions (see kernel-worker-source.ts). Under
// vitest that code comes from TypeScript sources; here we check it also survives tsup bundling,
// plain (like the package's dist) and minified with keepNames (like an aggressive CLI bundle).
const entry = fileURLToPath(new URL("./index.ts", import.meta.url));

const SCRIPT = `
const m = await import(process.argv[1]);
const backend = m.createCpuKernelBackend({ workers: 2, inlineBelow: 16 });
const n = 1000;
const a = backend.allocF32(n), b = backend.allocF32(n);
for (let i = 0; i < n; i++) { a[i] = i / 7; b[i] = -i / 3; }
const sum = await backend.weightedSum([a, b], [0.25, 0.75]);
const f16 = await backend.encode(a, "F16");
const back = await backend.decode(f16, "F16");
const k = await backend.topKThreshold(b, 10);
const dot = await backend.dot(a, b);
const sv = backend.allocF32(60 * 40);
for (let i = 0; i < sv.length; i++) sv[i] = Math.sin(i * 0.37) + (i % 7) / 10;
const onWorker = await backend.randomizedSvd(sv, 60, 40, 5, { seed: 3 });
const inline = m.randomizedSvd(Float32Array.from(sv), 60, 40, 5, { seed: 3 });
const same = (x, y) => x.length === y.length && x.every((v, i) => Object.is(v, y[i]));
const svdSame = same(onWorker.s, inline.s) && same(onWorker.u, inline.u) && same(onWorker.vh, inline.vh);
await backend.close();
console.log(JSON.stringify({ s: sum[999], back: back[500], k, dot, svdSame, sigma0: inline.s[0], description: backend.description }));
`;

describe("kernel workers from a tsup bundle", () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => ({ dir, cleanup } = await tempDir()));
  afterAll(() => cleanup());

  it.each([
    ["plain", { minify: false, keepNames: false }],
    ["minified with keepNames", { minify: true, keepNames: true }],
  ])("%s bundle runs kernels on worker threads", async (name, options) => {
    const outDir = join(dir, name.replace(/\W/g, "-"));
    await build({ entry: { index: entry }, format: ["esm"], platform: "node", target: "node20", outDir, dts: false, sourcemap: false, silent: true, config: false, ...options });
    const output = execFileSync(process.execPath, ["--input-type=module", "-e", SCRIPT, join(outDir, "index.js")], { encoding: "utf8" });
    const result = JSON.parse(output) as { s: number; back: number; k: number; dot: number; svdSame: boolean; sigma0: number; description: string };
    expect(result.description).toBe("cpu (2 worker threads)");
    expect(result.s).toBe(Math.fround(0.25 * Math.fround(999 / 7) + 0.75 * Math.fround(-999 / 3)));
    expect(result.back).toBe(71.4375); // 500/7 = 71.428… rounded to F16
    expect(result.k).toBe(Math.fround(990 / 3));
    let dot = 0;
    for (let i = 0; i < 1000; i++) dot += Math.fround(i / 7) * Math.fround(-i / 3);
    expect(result.dot).toBeCloseTo(dot, 6);
    // The SVD serialised into the bundled worker gives the calling thread's bits.
    expect(result.svdSame).toBe(true);
    expect(result.sigma0).toBeGreaterThan(1);
    // Idle workers are unref'ed: a process that never calls close() still exits by itself.
    const noClose = SCRIPT.replace("await backend.close();", "");
    const again = execFileSync(process.execPath, ["--input-type=module", "-e", noClose, join(outDir, "index.js")], { encoding: "utf8", timeout: 20_000 });
    expect(JSON.parse(again)).toEqual(result);
  });
});
