import { createRequire } from "node:module";
import { readdirSync, rmSync } from "node:fs";
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
  removeBundlesOfEndedRuns(options.outDir, options.name);
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
  // Tests clean up what they create: the bundle goes when the test process ends.
  if (!bundlesToRemove.has(outfile)) {
    bundlesToRemove.add(outfile);
    process.once("exit", () => rmSync(outfile, { force: true }));
  }
  return outfile;
}

const bundlesToRemove = new Set<string>();

/** Removes `<name>-<pid>.*` bundles whose process has ended (test workers are often killed before "exit"). */
function removeBundlesOfEndedRuns(outDir: string, name: string): void {
  for (const file of readdirSync(outDir)) {
    const pid = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}-(\\d+)\\.m?js$`).exec(file)?.[1];
    if (pid === undefined || Number(pid) === process.pid) continue;
    try {
      process.kill(Number(pid), 0);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") rmSync(join(outDir, file), { force: true });
    }
  }
}
