import { createRequire } from "node:module";
import { isAbsolute, join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { MergeError } from "../merge-error.js";
import { assertMergeMethod } from "./method-registry.js";
import type { AnyMergeMethod } from "./merge-method.js";

/**
 * Loads merge methods from a plugin module: a path (relative to `fromDir`) or a package name
 * resolved from `fromDir`. The module exports `mergeMethods` (an array), `mergeMethod`, or a
 * default export that is a method or an array of them. Plugins run as ordinary code: only load
 * modules you trust.
 */
export async function loadMergeMethodPlugin(specifier: string, fromDir: string): Promise<AnyMergeMethod[]> {
  let url: string;
  if (specifier.startsWith(".") || isAbsolute(specifier)) url = pathToFileURL(resolve(fromDir, specifier)).href;
  else {
    try {
      url = pathToFileURL(createRequire(join(fromDir, "noop.js")).resolve(specifier)).href;
    } catch {
      url = specifier; // ESM-only packages: let import() resolve it from here.
    }
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
