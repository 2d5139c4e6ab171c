import type { DType, KernelBackend } from "@stmerge/core-tensors";
import type { z } from "zod";
import type { SeededRandom } from "./seeded-random.js";

/**
 * What a merge method sees for one output tensor (or one chunk of it). Weights and block-wise
 * parameters are already resolved for the key's block by the plan.
 */
export interface MergeMethodContext {
  readonly kernels: KernelBackend;
  readonly key: string;
  /** Block of the key (`IN04`, `BASE`, `VAE`, ...). */
  readonly block: string;
  readonly shape: readonly number[];
  /** Element offset of `tensors` within the full tensor (non-zero only for chunked methods). */
  readonly offset: number;
  /** One weight per input tensor, in input order, resolved for this key's block. */
  readonly weights: readonly number[];
  /**
   * Deterministic uniform [0, 1) stream for input `i` of this key, seeded from the merge seed
   * and the key name; it continues across chunks, so results do not depend on chunk size. Its
   * `seed` gives any draw directly, core-tensors' drawBits(seed, index) (DARE draws element e at index e).
   */
  random(input: number): SeededRandom;
  /** Preallocated output of the same length as each input; methods write into it and return it. */
  readonly out: Float32Array;
  /**
   * For methods with `statistics`: the per-tensor state those passes gathered over every chunk
   * of this key (undefined in the gathering passes themselves and for other methods).
   */
  readonly statistics?: unknown;
}

/**
 * Per-tensor statistics gathered in streaming passes over a key's chunks before its merge pass
 * (TIES's magnitude threshold, slerp's norms and dot product), so the method can run in chunks
 * under the plan's memory budget instead of holding a whole tensor per input. `gather` must not
 * modify the inputs: when a tensor fits in one chunk the executor reads it once and hands the
 * same buffers to every pass and to `merge`.
 */
export interface MergeStatistics<P, S> {
  /** Number of gathering passes over the chunks before the merge pass (≥ 1). */
  readonly passes: number;
  /** A fresh state for one key. */
  init(ctx: MergeMethodContext, params: P): S;
  gather(pass: number, ctx: MergeMethodContext, tensors: readonly Float32Array[], params: P, state: S): void | Promise<void>;
  /**
   * Optional fast path of `gather` on the raw input bytes (no F32 copies): returns true when it
   * gathered exactly what `gather` would have, false to have the executor decode and call `gather`.
   */
  gatherEncoded?(pass: number, ctx: MergeMethodContext, inputs: readonly { readonly bytes: Uint8Array; readonly dtype: DType }[], params: P, state: S): Promise<boolean>;
  /** Called after each pass; returning true skips the remaining passes (e.g. nothing left to resolve). */
  endPass?(pass: number, state: S, params: P): boolean | void;
  /**
   * The state gathered does not depend on the order of the chunks (`ctx.offset` says where each
   * lies): the executor then gathers a key's chunks ending with its first ones, which the merge
   * pass takes from memory instead of reading them again (see the executor's gatheringOrder).
   */
  readonly anyChunkOrder?: boolean;
}

export interface MergeMethodArity {
  readonly min: number;
  readonly max?: number;
}

/**
 * A merge method: built-ins and third-party plugins have the same shape. `merge` receives the
 * inputs decoded to F32 (the method may overwrite them; they are executor scratch buffers) and
 * returns the result, normally `ctx.out`.
 */
export interface MergeMethod<P extends Record<string, unknown> = Record<string, unknown>> {
  readonly name: string;
  readonly description: string;
  /** Validates and defaults the method's parameters (a zod object schema). */
  readonly params: z.ZodType<P>;
  readonly arity: MergeMethodArity;
  /** Names of the input roles in order, for plans and errors (e.g. ["A", "B", "C"]). */
  readonly inputRoles?: readonly string[];
  /** Whether the models' weights affect the result (false: weights are ignored, e.g. consensus). */
  readonly usesWeights: boolean;
  /** Model 0 is the base and its weight does not affect the result (ties, dare): a non-default one is warned about. */
  readonly baseWeightIgnored?: boolean;
  /** Numeric parameters that may take a value per block (e.g. ["alpha"]). */
  readonly blockParams: readonly (keyof P & string)[];
  /**
   * True when every output element depends only on the same element of the inputs, so the
   * executor may process large tensors in chunks under its memory budget.
   */
  readonly elementwise: boolean;
  /**
   * Per-tensor statistics passes (see `MergeStatistics`): a method that is not element-wise but
   * declares them is still chunked; one that is neither gets whole tensors.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  readonly statistics?: MergeStatistics<P, any>;
  /** Draws random numbers (`ctx.random`): the merge seed is passed to it as the `seed` parameter and recorded. */
  readonly seeded?: boolean;
  /**
   * Honours a `normalize` parameter (also `--normalize`): the plan rescales each block's weights
   * to sum to 1; without it, weights that do not sum to 1 get a warning.
   */
  readonly normalizable?: boolean;
  /** Manifest top-level fields that fill a parameter when `merge_params` lacks it (e.g. `{ exponent: "consensus_exponent" }`). */
  readonly manifestFields?: Readonly<Partial<Record<keyof P & string, string>>>;
  merge(ctx: MergeMethodContext, tensors: Float32Array[], params: P): Promise<Float32Array>;
  /**
   * Optional fast path on the raw input bytes: write the encoded result into `out` and return
   * it, or return undefined to use `merge`. Must give the same result as `merge` + encode. For a
   * method with `statistics`, it runs after they are gathered, with them in `ctx.statistics`.
   */
  mergeEncoded?(ctx: MergeMethodContext, inputs: readonly { readonly bytes: Uint8Array; readonly dtype: DType }[], params: P, outDtype: DType, out: Uint8Array): Promise<Uint8Array | undefined>;
}

/** Identity helper that keeps a plugin's parameter type tied to its schema. */
export function defineMergeMethod<P extends Record<string, unknown>>(method: MergeMethod<P>): MergeMethod<P> {
  return method;
}

/** How the executor splits a method's tensors: any chunk alone, chunks after statistics passes, or whole tensors. */
export type MergeChunking = "elementwise" | "statistics" | "whole";

export function chunkingOf(method: Pick<AnyMergeMethod, "elementwise" | "statistics">): MergeChunking {
  return method.elementwise ? "elementwise" : method.statistics ? "statistics" : "whole";
}

/** Any method, whatever its parameter type (for registries and plans). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyMergeMethod = MergeMethod<any>;
