import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { MergeError } from "../merge-error.js";
import { assertMergeMethod } from "./method-registry.js";
import type { AnyMergeMethod } from "./merge-method.js";

/** `data:`, `http:`, `file:`, `node:`…: never loaded (a Windows drive letter is one character, so it is not a scheme). */
const URL_SCHEME = /^[a-z][a-z0-9+.-]+:/i;
const BARE_SPECIFIER = /^((?:@[^/\\]+\/)?[^/\\@.][^/\\]*)(\/.*)?$/;

/** Picks an ESM entry from a package.json `exports` target as Node's `import()` would (conditions import, node, default). */
function exportTarget(target: unknown, conditions: readonly string[]): string | undefined {
  if (typeof target === "string") return target;
  if (Array.isArray(target)) {
    for (const t of target) {
      const found = exportTarget(t, conditions);
      if (found) return found;
    }
    return undefined;
  }
  if (target && typeof target === "object") {
    for (const [key, value] of Object.entries(target)) if (conditions.includes(key)) return exportTarget(value, conditions);
  }
  return undefined;
}

/**
 * Resolves a package name the way `import()` would from a module in `fromDir`: the nearest
 * node_modules/<name> upward, then its `exports` (import/node/default, else require) or `main`.
 * Needed because import() resolves from *our* location (the bundle's folder), not the user's.
 */
function resolvePackageEntry(specifier: string, fromDir: string): string | undefined {
  const match = BARE_SPECIFIER.exec(specifier);
  if (!match) return undefined;
  const name = match[1]!;
  const subpath = match[2] ? `.${match[2]}` : ".";
  for (let dir = resolve(fromDir); ; dir = dirname(dir)) {
    const packageDir = join(dir, "node_modules", name);
    if (existsSync(join(packageDir, "package.json"))) {
      const pkg = JSON.parse(readFileSync(join(packageDir, "package.json"), "utf8")) as { exports?: unknown; main?: unknown };
      let entry: string | undefined;
      if (pkg.exports !== undefined) {
        const exp = pkg.exports;
        const keyed = exp && typeof exp === "object" && !Array.isArray(exp) && Object.keys(exp).some((k) => k.startsWith("."));
        const target = keyed ? (exp as Record<string, unknown>)[subpath] : subpath === "." ? exp : undefined;
        entry = exportTarget(target, ["import", "node", "default"]) ?? exportTarget(target, ["require"]);
      } else entry = subpath === "." ? (typeof pkg.main === "string" ? pkg.main : "index.js") : subpath;
      return entry === undefined ? undefined : resolve(packageDir, entry);
    }
    if (dirname(dir) === dir) return undefined;
  }
}

/**
 * Loads merge methods from a plugin module named on the command line: a path (relative to
 * `fromDir`, the user's working folder) or a package name resolved from `fromDir`. URL
 * specifiers (`data:`, `http:`, `file:`…) are refused. The module exports `mergeMethods` (an
 * array), `mergeMethod`, or a default export that is a method or an array of them. Plugins run
 * as ordinary code: only load modules you trust; a manifest never names code to load.
 */
export async function loadMergeMethodPlugin(specifier: string, fromDir: string): Promise<AnyMergeMethod[]> {
  if (URL_SCHEME.test(specifier) && !isAbsolute(specifier)) {
    throw new MergeError("MERGE_PLUGIN_REFUSED", `${specifier.slice(0, 80)}: URL plugin specifiers are never loaded; give a file path or a package name`, { file: specifier.slice(0, 200) });
  }
  let url: string;
  if (specifier.startsWith(".") || isAbsolute(specifier)) url = pathToFileURL(resolve(fromDir, specifier)).href;
  else {
    let entry: string | undefined;
    try {
      entry = resolvePackageEntry(specifier, fromDir) ?? createRequire(join(fromDir, "noop.js")).resolve(specifier);
    } catch (error) {
      throw new MergeError("MERGE_PLUGIN_NOT_FOUND", `${specifier}: cannot load merge-method plugin (no such package under ${fromDir}: ${(error as Error).message.split("\n")[0]})`, { file: specifier, cause: error });
    }
    url = pathToFileURL(entry).href;
  }
  let mod: Record<string, unknown>;
  try {
    mod = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new MergeError("MERGE_PLUGIN_NOT_FOUND", `${specifier}: cannot load merge-method plugin (${(error as Error).message.split("\n")[0]})`, { file: specifier, cause: error });
  }
  const exported = mod.mergeMethods ?? mod.mergeMethod ?? mod.default;
  const list = Array.isArray(exported) ? exported : [exported];
  if (exported === undefined || list.length === 0) throw new MergeError("MERGE_PLUGIN_INVALID", `${specifier}: exports no merge method (expected mergeMethods, mergeMethod or default)`, { file: specifier });
  for (const m of list) assertMergeMethod(m, specifier);
  return list as AnyMergeMethod[];
}
