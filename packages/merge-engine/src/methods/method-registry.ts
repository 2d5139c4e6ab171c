import { MergeError } from "../merge-error.js";
import { BUILTIN_MERGE_METHODS } from "./builtin-methods.js";
import type { AnyMergeMethod } from "./merge-method.js";

/** Aliases accepted from the Python tool's CLI (`--merge-method weighted`). */
const ALIASES: Readonly<Record<string, string>> = { weighted: "weighted_sum" };

export interface MethodRegistry {
  register(method: AnyMergeMethod): void;
  get(name: string): AnyMergeMethod;
  has(name: string): boolean;
  names(): string[];
}

export function createMethodRegistry(methods: readonly AnyMergeMethod[] = BUILTIN_MERGE_METHODS): MethodRegistry {
  const byName = new Map<string, AnyMergeMethod>();
  const registry: MethodRegistry = {
    register(method) {
      assertMergeMethod(method, method?.name ?? "<plugin>");
      if (byName.has(method.name)) throw new MergeError("MERGE_METHOD_DUPLICATE", `merge method ${JSON.stringify(method.name)} is already registered`);
      byName.set(method.name, method);
    },
    get(name) {
      const method = byName.get(ALIASES[name] ?? name);
      if (!method) throw new MergeError("MERGE_UNKNOWN_METHOD", `unknown merge method ${JSON.stringify(name)} (available: ${[...byName.keys()].join(", ")})`);
      return method;
    },
    has: (name) => byName.has(ALIASES[name] ?? name),
    names: () => [...byName.keys()],
  };
  for (const m of methods) registry.register(m);
  return registry;
}

/** Checks the shape of a value claimed to be a merge method (plugins are untrusted input). */
export function assertMergeMethod(value: unknown, source: string): asserts value is AnyMergeMethod {
  const m = value as Partial<AnyMergeMethod> | undefined;
  const problem =
    !m || typeof m !== "object" ? "is not an object"
    : typeof m.name !== "string" || !/^[a-z][a-z0-9_]*$/.test(m.name) ? "has no snake_case string `name`"
    : typeof m.merge !== "function" ? "has no `merge` function"
    : !m.params || typeof (m.params as { safeParse?: unknown }).safeParse !== "function" ? "has no zod `params` schema"
    : !m.arity || typeof m.arity.min !== "number" || m.arity.min < 1 ? "has no `arity.min` ≥ 1"
    : !Array.isArray(m.blockParams) ? "has no `blockParams` array"
    : typeof m.elementwise !== "boolean" || typeof m.usesWeights !== "boolean" ? "lacks boolean `elementwise`/`usesWeights`"
    : undefined;
  if (problem) throw new MergeError("MERGE_PLUGIN_INVALID", `${source}: merge method plugin ${problem}`, { file: source });
}
