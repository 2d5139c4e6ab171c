import { createRequire } from "node:module";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

const APP = join(import.meta.dirname, "..", "..", "..", "apps", "stmerge");

/**
 * Bundles the stmerge app the way its tsup config does (one ESM file, workspace packages from
 * source, native optional modules external) into the app's ignored .tmp folder, so end-to-end
 * tests run the bundled CLI from current sources without depending on a prior `pnpm build`.
 */
export async function bundleStmerge(): Promise<string> {
  const requireFromTsup = createRequire(createRequire(import.meta.url).resolve("tsup"));
  const esbuild = requireFromTsup("esbuild") as { build(options: Record<string, unknown>): Promise<unknown> };
  const outDir = join(APP, ".tmp");
  await mkdir(outDir, { recursive: true });
  const outfile = join(outDir, `stmerge-test-${process.pid}.js`);
  await esbuild.build({
    entryPoints: [join(APP, "src", "main.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    conditions: ["@stmerge/source"],
    external: ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node", "@napi-rs/blake-hash"],
    banner: { js: "import { createRequire as __stmergeCreateRequire } from 'node:module'; const require = __stmergeCreateRequire(import.meta.url);" },
    logLevel: "silent",
  });
  return outfile;
}
