import { didYouMean } from "../manifest/closest-name.js";
import { MergeError } from "../merge-error.js";
import type { AnyMergeMethod } from "./merge-method.js";

/** The parameter names of a method whose schema is a zod object; undefined for other schemas (a plugin's own validator). */
export function methodParamNames(method: AnyMergeMethod): string[] | undefined {
  const shape = (method.params as { shape?: unknown }).shape;
  return shape && typeof shape === "object" ? Object.keys(shape) : undefined;
}

/**
 * Refuses a parameter the method does not take (zod would drop it silently, so a typo such as
 * `alpah` merged with the default alpha), naming the key, a likely intended one and the method's
 * parameters.
 */
export function checkParamNames(method: AnyMergeMethod, params: Readonly<Record<string, unknown>>): void {
  const known = methodParamNames(method);
  if (!known) return;
  for (const key of Object.keys(params)) {
    if (known.includes(key)) continue;
    throw new MergeError(
      "MERGE_UNKNOWN_PARAM",
      `merge_params.${key}: ${method.name} has no parameter ${JSON.stringify(key)}${didYouMean(key, known)}; its parameters: ${known.join(", ") || "none"}`,
      { details: { key, method: method.name, parameters: known } },
    );
  }
}
