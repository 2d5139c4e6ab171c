import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { loadMergeMethodPlugin } from "./load-method-plugin.js";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const temp = () => {
  const d = mkdtempSync(join(tmpdir(), "stmerge-plugin-"));
  dirs.push(d);
  return d;
};

/** A plain-JS plugin as a user would ship it; importing it leaves a marker file beside it. */
const PLUGIN_SOURCE = (name: string) => `import { writeFileSync } from "node:fs";
writeFileSync(new URL("./imported.marker", import.meta.url), "imported");
const params = { safeParse: (v) => ({ success: true, data: v ?? {} }), parse: (v) => v ?? {} };
export const mergeMethods = [{ name: ${JSON.stringify(name)}, description: "max", params, arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true,
  async merge(ctx, tensors) { for (let i = 0; i < ctx.out.length; i++) ctx.out[i] = Math.max(...tensors.map((t) => t[i])); return ctx.out; } }];
`;

describe("loadMergeMethodPlugin", () => {
  it("resolves an ESM-only package (exports.import only) from the given folder, not from stmerge's own location", async () => {
    const dir = temp();
    const pkg = join(dir, "node_modules", "@someone", "esm-plugin");
    mkdirSync(join(pkg, "dist"), { recursive: true });
    writeFileSync(join(pkg, "package.json"), JSON.stringify({ name: "@someone/esm-plugin", type: "module", exports: { ".": { types: "./dist/index.d.ts", import: "./dist/index.js" } } }));
    writeFileSync(join(pkg, "dist", "index.js"), PLUGIN_SOURCE("esm_max"));
    mkdirSync(join(dir, "work", "deeper"), { recursive: true });
    const methods = await loadMergeMethodPlugin("@someone/esm-plugin", join(dir, "work", "deeper"));
    expect(methods.map((m) => m.name)).toEqual(["esm_max"]);
    expect(existsSync(join(pkg, "dist", "imported.marker"))).toBe(true);
    await expect(loadMergeMethodPlugin("@someone/esm-plugin", temp())).rejects.toMatchObject({ code: "MERGE_PLUGIN_NOT_FOUND" });
  });

  it("refuses URL specifiers (data:, file:, https:) without importing them", async () => {
    const dir = temp();
    const marker = join(dir, "data-url.marker");
    const code = `import { writeFileSync } from "node:fs"; writeFileSync(${JSON.stringify(marker)}, "ran"); export const mergeMethods = [];`;
    for (const spec of [`data:text/javascript,${encodeURIComponent(code)}`, `file://${join(dir, "x.mjs")}`, "https://example.invalid/p.mjs", "node:fs"]) {
      await expect(loadMergeMethodPlugin(spec, dir)).rejects.toMatchObject({ code: "MERGE_PLUGIN_REFUSED" });
    }
    expect(existsSync(marker)).toBe(false);
  });
});
