import type { DType, TensorDescriptor } from "@stmerge/core-tensors";
import type { ArchitectureReport } from "../models/detect-architecture.js";

/**
 * Buffer sets the executor cycles through: up to three items computing (the oldest finishing)
 * while the next one is read; the plan's chunk size and peak estimate count all of them. A third
 * item in flight fills the gaps between a method's dependent steps (TIES: about 7% less time).
 */
export const MERGE_BUFFER_SETS = 4;

/**
 * Output buffers the executor cycles through, apart from the sets: an item computes into one
 * once that buffer's previous write is done, so up to this many writes may wait for the disk.
 * A stretch of large chunks computes faster than the disk takes them (about 2 GB/s here), which
 * catches up during the small keys after it; with one output buffer per set, the weighted sum of
 * three SD1.5 checkpoints waited 0.4–0.6 s for writes, with eight 0.1 s (merge-engine README).
 */
export const MERGE_OUTPUT_BUFFERS = 8;

/** What the executor does for one output key. */
export type PlanAction =
  /** Run the method on the listed models' tensors. */
  | "merge"
  /** Copy (and cast when dtypes differ) the tensor of one model. */
  | "copy"
  /** Take the tensor from the standalone VAE file. */
  | "vae";

export interface PlanEntry {
  readonly key: string;
  readonly action: PlanAction;
  readonly block: string;
  /** Indices of the models read for this key (for copy: the one model copied). */
  readonly inputs: readonly number[];
  /** Weight of each input, resolved for the block (and rescaled when models lack the key). */
  readonly weights: readonly number[];
  /** Method parameters resolved for the block. */
  readonly params: Readonly<Record<string, unknown>>;
  /** For "vae": the key in the VAE file. */
  readonly sourceKey: string;
  readonly shape: readonly number[];
  readonly outDtype: DType;
  readonly byteLength: number;
  /** Why a key is copied or merged from fewer models (for --dry-run and tests). */
  readonly note: string | undefined;
  /** Elements per chunk the executor reads, computes and writes at a time for this key. */
  readonly chunkElements: number;
  /**
   * Streaming passes over this key's chunks before the merge/copy pass (the method's
   * statistics passes; 0 for element-wise methods and copies, and when the key fits one chunk,
   * whose statistics are then gathered from the buffers already read).
   */
  readonly statisticsPasses: number;
  /**
   * Inpainting / instruct-pix2pix first conv (A1111's recipe): model 0 has `total` input
   * channels (dimension 1), the other inputs `merged`; the method runs on channels
   * 0…merged−1 and the rest are copied from model 0. The key is read whole.
   */
  readonly channels?: { readonly merged: number; readonly total: number } | undefined;
}

export interface PlanModel {
  readonly index: number;
  readonly path: string;
  readonly name: string;
  readonly weight: number;
  readonly sha256: string | undefined;
  readonly architecture: ArchitectureReport;
}

export interface BlockSummary {
  readonly block: string;
  readonly tensors: number;
  readonly bytes: number;
  /** Weight per model for this block (the value most of its keys use). */
  readonly weights: readonly number[];
  readonly params: Readonly<Record<string, unknown>>;
}

/**
 * A merge plan is data: every output key with its action, inputs, resolved weights and
 * parameters, and output dtype. `--dry-run` prints it, the output's metadata records it, the
 * executor follows it.
 */
export interface MergePlan {
  readonly method: string;
  /** Whether the models' weights affect the result (false for consensus, slerp, add_difference: the plan shows no weights). */
  readonly usesWeights: boolean;
  readonly params: Readonly<Record<string, unknown>>;
  readonly architecture: ArchitectureReport;
  readonly models: readonly PlanModel[];
  readonly vaePath: string | undefined;
  readonly entries: readonly PlanEntry[];
  readonly blocks: readonly BlockSummary[];
  readonly outputPrecision: "match" | "fp16" | "bf16" | "fp32";
  /** Keys removed by pruning. */
  readonly pruned: readonly string[];
  /** Keys present only in models other than the first (left out, see the missing-key rule). */
  readonly onlyInLaterModels: readonly string[];
  readonly outputBytes: number;
  /** Upper bound of the executor's working buffers (every buffer set, F32 copies included, and every output buffer). */
  readonly estimatedPeakBytes: number;
  /** Element count per chunk under the memory budget (each entry carries its own, which may be smaller). */
  readonly chunkElements: number;
  readonly seed: number;
  readonly warnings: readonly string[];
}

/** The output descriptors of a plan, in write order. */
export function planDescriptors(plan: MergePlan): TensorDescriptor[] {
  return plan.entries.map((e) => ({ name: e.key, dtype: e.outDtype, shape: e.shape, byteLength: e.byteLength }));
}
