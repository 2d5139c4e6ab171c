import { join } from "node:path";
import { bundleEntry } from "@stmerge/test-utils";

/** Bundles a TypeScript entry of the cache's tests into a runnable .mjs child script. */
export async function bundleChild(entry: string, name: string): Promise<string> {
  return bundleEntry(entry, { outDir: join(import.meta.dirname, "..", ".tmp"), name, external: ["@napi-rs/blake-hash", "hash-wasm"] });
}
