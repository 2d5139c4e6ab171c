import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openSafetensors } from "@stmerge/core-tensors";
import { writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleStmerge } from "./bundle-stmerge.js";

// The bundled binary loads `--plugin <package>` from the user's folder (user report item 10: it
// resolved from the bundle's own location), and never loads what a manifest names.

let bin: string;
let dir: string;

function stmerge(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: dir, env: { PATH: process.env.PATH, HOME: dir, STMERGE_NO_BANNER: "1" }, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (err += d.toString()));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, out, err }));
  });
}

/** An ESM-only plugin package (exports.import only, like @stmerge/example-plugin); importing it leaves a marker. */
const PLUGIN = `import { writeFileSync } from "node:fs";
writeFileSync(new URL("./imported.marker", import.meta.url), "imported");
const params = { safeParse: (v) => ({ success: true, data: v ?? {} }), parse: (v) => v ?? {} };
export const mergeMethods = [{ name: "median", description: "median", params, arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true,
  async merge(ctx, tensors) { for (let i = 0; i < ctx.out.length; i++) { const v = tensors.map((t) => t[i]).sort((a, b) => a - b); ctx.out[i] = v[v.length >> 1]; } return ctx.out; } }];
`;

beforeAll(async () => {
  bin = await bundleStmerge();
  dir = await mkdtemp(join(tmpdir(), "stmerge-bundled-plugin-"));
  const pkg = join(dir, "node_modules", "@stmerge", "example-plugin");
  await mkdir(join(pkg, "dist"), { recursive: true });
  await writeFile(join(pkg, "package.json"), JSON.stringify({ name: "@stmerge/example-plugin", type: "module", exports: { ".": { types: "./dist/index.d.ts", import: "./dist/index.js" } } }));
  await writeFile(join(pkg, "dist", "index.js"), PLUGIN);
  for (const [m, seed] of [["a", 1], ["b", 2], ["c", 3]] as const) await writeTinySd1Model(join(dir, `${m}.safetensors`), { seed });
  const models = ["a", "b", "c"].map((m) => ({ path: `${m}.safetensors`, weight: 1 / 3 }));
  await writeFile(join(dir, "plain.json"), JSON.stringify({ models, merge_method: "median", output: "out.safetensors" }));
  await writeFile(join(dir, "names-plugin.json"), JSON.stringify({ models, merge_method: "median", plugins: ["@stmerge/example-plugin"], output: "named.safetensors" }));
}, 120_000);

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
  await rm(bin, { force: true });
});

describe("bundled stmerge: merge plugins", () => {
  it("a manifest naming a plugin stops with the --plugin flag that would load it, importing nothing (even --dry-run)", async () => {
    const r = await stmerge(["merge", "-m", "names-plugin.json", "--dry-run", "--no-cache"]);
    expect(r.code).toBe(1);
    expect(r.err).toContain("run again with --plugin @stmerge/example-plugin");
    expect(r.err).toContain("[MANIFEST_PLUGINS_NOT_LOADED]");
    expect(existsSync(join(dir, "node_modules", "@stmerge", "example-plugin", "dist", "imported.marker"))).toBe(false);
    expect(existsSync(join(dir, "named.safetensors"))).toBe(false);
  });

  it("--plugin @stmerge/example-plugin resolves from the working folder and runs its method", async () => {
    const r = await stmerge(["merge", "-m", "plain.json", "--plugin", "@stmerge/example-plugin", "--no-cache", "--json"]);
    expect(r.err).not.toContain("stmerge:");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ method: "median" });
    const out = await openSafetensors(join(dir, "out.safetensors"));
    expect(JSON.parse(out.metadata.sd_merge_recipe!).algorithm).toBe("median");
    await out.close();
  });
});
