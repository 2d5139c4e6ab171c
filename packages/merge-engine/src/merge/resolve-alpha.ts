import { MergeError } from "../merge-error.js";
import type { AnyMergeMethod } from "../methods/merge-method.js";

/** A scalar α, or per-block values (a SuperMerger-style list in block order, or by block name). */
export type AlphaValue = number | readonly number[] | Readonly<Record<string, number>>;

export interface AlphaModel {
  readonly weight: number;
  readonly blockWeights: Readonly<Record<string, number>> | readonly number[];
}

export interface ResolvedAlpha<M extends AlphaModel> {
  readonly models: M[];
  readonly params: Record<string, unknown>;
  readonly blockParams: Record<string, Readonly<Record<string, number>> | readonly number[]>;
  readonly warnings: string[];
}

const hasBlocks = (b: AlphaModel["blockWeights"]) => (Array.isArray(b) ? b.length > 0 : Object.keys(b).length > 0);
const complement = (a: AlphaValue): AlphaValue => (typeof a === "number" ? 1 - a : Array.isArray(a) ? a.map((v) => 1 - v) : Object.fromEntries(Object.entries(a).map(([k, v]) => [k, 1 - v])));

/**
 * The two-model α of A1111 and SuperMerger users. For a method with an `alpha` parameter
 * (add_difference's multiplier M, train_difference) it is that parameter (per-block values go
 * to `block_params.alpha`). For a normalizable method with two models (weighted_sum) it means
 * A·(1−α) + B·α: model A's weight (per block) becomes 1−α and B's α. Anything else is refused,
 * as are two sources for the same value.
 */
export function resolveAlpha<M extends AlphaModel>(alpha: AlphaValue, method: AnyMergeMethod, models: readonly M[], params: Readonly<Record<string, unknown>>, blockParams: Readonly<Record<string, Readonly<Record<string, number>> | readonly number[]>>): ResolvedAlpha<M> {
  const shape = (method.params as { shape?: Record<string, unknown> }).shape;
  if (shape && "alpha" in shape) {
    const scalar = typeof alpha === "number";
    if (scalar && params.alpha !== undefined && params.alpha !== alpha) throw new MergeError("MERGE_BAD_PARAMS", `${method.name}: alpha ${alpha} and merge_params.alpha ${String(params.alpha)} both given; keep one`);
    if (!scalar && blockParams.alpha !== undefined) throw new MergeError("MERGE_BAD_PARAMS", `${method.name}: per-block alpha and block_params.alpha both given; keep one`);
    return scalar ? { models: [...models], params: { ...params, alpha }, blockParams: { ...blockParams }, warnings: [] } : { models: [...models], params: { ...params }, blockParams: { ...blockParams, alpha: alpha as Readonly<Record<string, number>> | readonly number[] }, warnings: [] };
  }
  if (!method.normalizable || !method.usesWeights || models.length !== 2) {
    throw new MergeError("MERGE_BAD_PARAMS", `alpha (A·(1−α) + B·α) applies to two models with weighted_sum, or is the multiplier of add_difference/train_difference; ${method.name} with ${models.length} models has no alpha`);
  }
  const [a, b] = models as readonly [M, M];
  if (hasBlocks(a.blockWeights) || hasBlocks(b.blockWeights)) throw new MergeError("MERGE_BAD_PARAMS", "alpha sets both models' weights per block; remove models[].block_weights or alpha");
  const warnings: string[] = [];
  const scalar = typeof alpha === "number";
  const alphaWeights = scalar ? [1 - alpha, alpha] : [0.5, 0.5];
  if (scalar && (a.weight !== alphaWeights[0] || b.weight !== alphaWeights[1])) warnings.push(`alpha ${alpha} sets the weights to ${alphaWeights[0]}/${alphaWeights[1]}; models[].weight (${a.weight}/${b.weight}) not used`);
  const withAlpha = (m: M, value: AlphaValue, weight: number): M => ({ ...m, weight, blockWeights: typeof value === "number" ? {} : value });
  return {
    models: [withAlpha(a, complement(alpha), alphaWeights[0]!), withAlpha(b, alpha, alphaWeights[1]!)],
    params: { ...params },
    blockParams: { ...blockParams },
    warnings,
  };
}
