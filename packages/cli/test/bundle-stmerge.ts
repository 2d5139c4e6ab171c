import { join } from "node:path";
import { bundleEntry } from "@stmerge/test-utils";

const APP = join(import.meta.dirname, "..", "..", "..", "apps", "stmerge");

/**
 * Bundles the stmerge app the way its tsup config does (one ESM file, workspace packages from
 * source, native optional modules external) into the app's ignored .tmp folder, so end-to-end
 * tests run the bundled CLI from current sources without depending on a prior `pnpm build`.
 */
export async function bundleStmerge(): Promise<string> {
  return bundleEntry(join(APP, "src", "main.ts"), {
    outDir: join(APP, ".tmp"),
    name: "stmerge-test",
    extension: ".js",
    external: ["@tensorflow/tfjs-node-gpu", "@tensorflow/tfjs-node", "@napi-rs/blake-hash"],
    emptyModules: ["react-devtools-core"],
    banner: "import { createRequire as __stmergeCreateRequire } from 'node:module'; const require = __stmergeCreateRequire(import.meta.url);",
  });
}
