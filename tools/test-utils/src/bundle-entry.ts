import { createRequire } from "node:module";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";

export interface BundleEntryOptions {
  /** Folder for the bundle (an ignored `.tmp` folder of the calling package). */
  readonly outDir: string;
  /** File name stem; the process id is appended so parallel test runs never share a bundle. */
  readonly name: string;
  /** Modules left to be loaded at run time (native, optional ones). */
  readonly external?: readonly string[];
  /** Modules replaced by an empty one (imported only in modes the bundle never uses, e.g. ink's react-devtools-core). */
  readonly emptyModules?: readonly string[];
  /** Text put first in the bundle (e.g. a `require` shim for bundled CommonJS). */
  readonly banner?: string;
  /** `.mjs` (default) or `.js` in a folder whose package.json says ESM. */
  readonly extension?: ".mjs" | ".js";
}

/**
 * Bundles a TypeScript entry with esbuild (the bundler tsup uses) into one runnable ESM file,
 * resolving workspace packages from their sources, so tests can run real child processes
 * against the current code without a prior build.
 */
export async function bundleEntry(entry: string, options: BundleEntryOptions): Promise<string> {
  const requireFromTsup = createRequire(createRequire(import.meta.url).resolve("tsup"));
  const esbuild = requireFromTsup("esbuild") as { build(options: Record<string, unknown>): Promise<unknown> };
  await mkdir(options.outDir, { recursive: true });
  const outfile = join(options.outDir, `${options.name}-${process.pid}${options.extension ?? ".mjs"}`);
  await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile,
    conditions: ["@stmerge/source"],
    external: [...(options.external ?? [])],
    plugins: (options.emptyModules ?? []).map((name) => ({
      name: `empty-${name}`,
      setup(build: { onResolve: (o: { filter: RegExp }, f: () => unknown) => void; onLoad: (o: { filter: RegExp; namespace: string }, f: () => unknown) => void }) {
        const filter = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}$`);
        build.onResolve({ filter }, () => ({ path: name, namespace: "empty-module" }));
        build.onLoad({ filter: /.*/, namespace: "empty-module" }, () => ({ contents: "export default undefined;", loader: "js" }));
      },
    })),
    ...(options.banner ? { banner: { js: options.banner } } : {}),
    logLevel: "silent",
  });
  return outfile;
}
