import { createRequire } from "node:module";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

/**
 * Bundles a TypeScript entry into a runnable .mjs (esbuild, as tsup uses it) so tests can run
 * real child processes against the sources without a prior build.
 */
export async function bundleChild(entry: string, name: string): Promise<string> {
  const requireFromTsup = createRequire(createRequire(import.meta.url).resolve("tsup"));
  const esbuild = requireFromTsup("esbuild") as { build(options: Record<string, unknown>): Promise<unknown> };
  const outDir = join(import.meta.dirname, "..", ".tmp");
  await mkdir(outDir, { recursive: true });
  const outfile = join(outDir, `${name}-${process.pid}.mjs`);
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    conditions: ["@stmerge/source"],
    external: ["@napi-rs/blake-hash", "hash-wasm"],
    logLevel: "silent",
  });
  return outfile;
}
