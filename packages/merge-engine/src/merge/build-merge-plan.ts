import { isFloatDType, PRECISION_DTYPE, shapeElementCount, dtypeSize, type DType, type TensorDescriptor } from "@stmerge/core-tensors";
import { MergeError } from "../merge-error.js";
import { chunkingOf, type AnyMergeMethod } from "../methods/merge-method.js";
import { blockMapFor, blockOfKey, blockValuesFromList, type BlockOptions } from "../models/block-maps.js";
import { detectArchitecture, type ArchitectureReport } from "../models/detect-architecture.js";
import { isCopyFromFirstKey, shouldPruneKey } from "../models/key-rules.js";
import { countUpBlocks, FLUX_VAE_PREFIX, LDM_VAE_PREFIX, shapesCompatibleIgnoringTrailingOnes, vaeKeyToLdm } from "../models/vae-key-map.js";
import { checkParamNames } from "../methods/check-param-names.js";
import { checkMergeInputs } from "./check-merge-inputs.js";
import { declaredArchitectureWarning } from "./check-declared-architecture.js";
import { MERGE_BUFFER_SETS, MERGE_OUTPUT_BUFFERS, type BlockSummary, type MergePlan, type PlanEntry, type PlanModel } from "./merge-plan.js";

export interface MergePlanInput {
  /** Display name (file name). */
  readonly name: string;
  readonly path: string;
  readonly descriptors: readonly TensorDescriptor[];
  readonly metadata: Readonly<Record<string, string>>;
  readonly weight: number;
  /** Per-block weights overriding `weight` (`VAE` falls back to `BASE`), by name or as a SuperMerger-style list. */
  readonly blockWeights?: Readonly<Record<string, number>> | readonly number[];
  readonly sha256?: string | undefined;
  /** The manifest's informational `architecture` label; a different family than the tensors' is warned about. */
  readonly declaredArchitecture?: string | undefined;
}

export interface MergePlanOptions {
  readonly method: AnyMergeMethod;
  /** Method parameters before validation (defaults filled in by the method's schema). */
  readonly params?: Readonly<Record<string, unknown>>;
  /** Per-block values of block-wise method parameters: `{ alpha: { OUT03: 0.8 } }`. */
  readonly blockParams?: Readonly<Record<string, Readonly<Record<string, number>> | readonly number[]>>;
  readonly outputPrecision?: "match" | "fp16" | "bf16" | "fp32";
  /** Adaptive pruning of the output (default true). */
  readonly prune?: boolean;
  /** A standalone VAE to bake in. */
  readonly vae?: { readonly path: string; readonly descriptors: readonly TensorDescriptor[] };
  readonly timeEmbedBlock?: BlockOptions["timeEmbedBlock"];
  /** Working-buffer budget that sets the chunk size of element-wise methods (default 512 MiB). */
  readonly memoryBudgetBytes?: number;
  /** Upper bound of the chunk size in elements (below what the budget allows; tests use it to force streaming). */
  readonly maxChunkElements?: number;
  readonly seed?: number;
}

const MIN_CHUNK_ELEMENTS = 1 << 16;
export const DEFAULT_MEMORY_BUDGET = 512 * 1024 * 1024;

/** The UNet's first convolution, whose input channels tell inpainting (9) and instruct-pix2pix (8) models. */
const FIRST_CONV = /(^|\.)diffusion_model\.input_blocks\.0\.0\.weight$/;
const sameExceptChannels = (a: readonly number[], b: readonly number[]) => a.length === 4 && b.length === 4 && a[0] === b[0] && a[2] === b[2] && a[3] === b[3];
const fmtShape = (s: readonly number[]) => `[${s.join(", ")}]`;
const sameShape = (a: readonly number[], b: readonly number[]) => a.length === b.length && a.every((d, i) => d === b[i]);

/**
 * Validates the inputs from their headers alone (no tensor is read) and plans every output key.
 * Missing-key rule: the output has the first model's keys; a key some later models lack is
 * merged over the models that have it (weights rescaled to keep their total), or copied from
 * the first model when the method needs every input (fixed roles such as A/B/C) or too few
 * models have it. Keys only later models have are left out and listed in `onlyInLaterModels`.
 */
export function buildMergePlan(inputs: readonly MergePlanInput[], options: MergePlanOptions): MergePlan {
  const { method } = options;
  if (inputs.length === 0) throw new MergeError("MERGE_NO_INPUTS", "no models to merge");
  const first = inputs[0]!;
  if (inputs.length < method.arity.min || (method.arity.max !== undefined && inputs.length > method.arity.max)) {
    const want = method.arity.max === undefined ? `at least ${method.arity.min}` : method.arity.min === method.arity.max ? `exactly ${method.arity.min}` : `${method.arity.min} to ${method.arity.max}`;
    throw new MergeError("MERGE_ARITY", `${method.name} needs ${want} models${method.inputRoles ? ` (${method.inputRoles.join(", ")})` : ""}, the manifest has ${inputs.length}`, { file: first.path });
  }
  checkParamNames(method, options.params ?? {});
  const parsedParams = method.params.safeParse(options.params ?? {});
  if (!parsedParams.success) {
    const issue = parsedParams.error.issues[0];
    throw new MergeError("MERGE_BAD_PARAMS", `${method.name}: parameter ${issue?.path.join(".") || "(all)"}: ${issue?.message ?? "invalid"}`);
  }
  const params = parsedParams.data as Record<string, unknown>;
  const warnings: string[] = [];

  // Architecture: every input must be the same family (unknown files are checked by shapes only).
  const reports: ArchitectureReport[] = inputs.map((i) => detectArchitecture(i.descriptors, { filename: i.path, metadata: i.metadata }));
  checkMergeInputs(inputs, reports);
  for (const [i, input] of inputs.entries()) {
    const w = declaredArchitectureWarning(input.path, input.declaredArchitecture, reports[i]!);
    if (w) warnings.push(w);
  }
  const primary = reports[0]!;
  for (let i = 1; i < inputs.length; i++) {
    const r = reports[i]!;
    if (primary.architecture !== "unknown" && r.architecture !== "unknown" && r.architecture !== primary.architecture) {
      throw new MergeError("MERGE_ARCHITECTURE_MISMATCH", `${inputs[i]!.path}: is ${r.label} (${r.architecture}), but ${first.path} is ${primary.label} (${primary.architecture})`, { file: inputs[i]!.path });
    }
  }

  // Shapes: every key shared with the first model must have its shape; the first mismatch is named.
  // The one exception is A1111's inpainting / instruct-pix2pix recipe: model 0's first conv has
  // 9 (or 8) input channels, the others' 4; channels 0–3 are merged, the extra ones kept from model 0.
  const byName = inputs.map((i) => new Map(i.descriptors.map((d) => [d.name, d])));
  const extraChannelKeys = new Map<string, number>();
  for (const d of first.descriptors) {
    for (let i = 1; i < inputs.length; i++) {
      const other = byName[i]!.get(d.name);
      if (other && !sameShape(other.shape, d.shape) && FIRST_CONV.test(d.name) && sameExceptChannels(d.shape, other.shape)) {
        if (other.shape[1] === 4 && (d.shape[1] === 9 || d.shape[1] === 8)) {
          extraChannelKeys.set(d.name, 4);
          continue;
        }
        if (d.shape[1] === 4 && (other.shape[1] === 9 || other.shape[1] === 8)) {
          const kind = other.shape[1] === 9 ? "inpainting" : "instruct-pix2pix";
          throw new MergeError("MERGE_SHAPE_MISMATCH", `${d.name}: ${inputs[i]!.path} is an ${kind} model (${other.shape[1]} input channels) but is not model 0; list it first (A in A1111's recipe: A = ${kind} model, B = custom, C = base)`, { file: inputs[i]!.path, details: { key: d.name } });
        }
      }
      if (other && !sameShape(other.shape, d.shape)) {
        throw new MergeError("MERGE_SHAPE_MISMATCH", `${d.name}: ${first.path} has shape ${fmtShape(d.shape)}, ${inputs[i]!.path} has ${fmtShape(other.shape)}`, { file: inputs[i]!.path, details: { key: d.name } });
      }
    }
  }

  // Block names given by the user must exist for this architecture.
  const map = blockMapFor(primary.architecture);
  const known = new Set(map.blocks);
  const checkBlocks = (values: Readonly<Record<string, number>> | readonly number[] | undefined, where: string): Readonly<Record<string, number>> | undefined => {
    if (Array.isArray(values)) {
      const record = blockValuesFromList(map, values);
      if (!record) {
        const named = map.blocks.filter((b) => b !== "VAE");
        throw new MergeError("MERGE_BLOCK_LIST_LENGTH", `${where}: ${values.length} block values given; ${primary.label} takes ${named.length} (${named[0]} … ${named.at(-1)}) or ${map.blocks.length} with VAE`);
      }
      return record;
    }
    const record = values as Readonly<Record<string, number>> | undefined;
    for (const b of Object.keys(record ?? {})) {
      if (!known.has(b)) throw new MergeError("MERGE_UNKNOWN_BLOCK", `${where}: block ${b} does not exist for ${primary.label} (blocks: ${map.blocks.join(" ")})`);
    }
    return record;
  };
  const blockWeightsOf = inputs.map((i) => checkBlocks(i.blockWeights, i.path));
  const blockParams: Record<string, Readonly<Record<string, number>> | undefined> = {};
  for (const [param, values] of Object.entries(options.blockParams ?? {})) {
    if (!(method.blockParams as readonly string[]).includes(param)) {
      throw new MergeError("MERGE_BAD_BLOCK_PARAM", `${method.name}: parameter ${JSON.stringify(param)} cannot vary by block (block-wise: ${method.blockParams.join(", ") || "none"})`);
    }
    blockParams[param] = checkBlocks(values, `block_params.${param}`);
  }

  const normalize = method.normalizable === true && params.normalize === true;
  if (method.normalizable === true && !normalize) {
    const total = inputs.reduce((s, i) => s + i.weight, 0);
    if (Math.abs(total - 1) > 1e-6) warnings.push(`weights sum to ${total.toFixed(4)}, not 1 (used as given; --normalize rescales them)`);
  }

  const blockValue = (values: Readonly<Record<string, number>> | undefined, block: string): number | undefined => values?.[block] ?? (block === "VAE" ? values?.BASE : undefined);
  const weightsFor = (block: string) => inputs.map((i, k) => blockValue(blockWeightsOf[k], block) ?? i.weight);
  if (!method.usesWeights) {
    // Weights a method ignores: block weights cannot have been meant (error), differing scalar weights probably were (warning).
    const withBlocks = inputs.findIndex((_, k) => Object.keys(blockWeightsOf[k] ?? {}).length > 0);
    if (withBlocks >= 0) throw new MergeError("MERGE_BAD_PARAMS", `${inputs[withBlocks]!.path}: block_weights given, but ${method.name} does not use model weights (use its parameters${method.blockParams.length ? ` or block_params.${method.blockParams[0]}` : ""}, or weighted_sum)`, { file: inputs[withBlocks]!.path });
    if (new Set(inputs.map((i) => i.weight)).size > 1) warnings.push(`${method.name} does not use model weights; the weights ${inputs.map((i) => i.weight).join("/")} are ignored and not recorded`);
  } else if (method.baseWeightIgnored && inputs.length > 1) {
    // The same rule for the base alone (ties, dare): a weight other than a default (scan's 1/N or 1.0, or
    // the others' common weight) or block weights on model 0 were probably meant, and do nothing.
    const base = inputs[0]!;
    const others = inputs.slice(1).map((i) => i.weight);
    const isDefault = [1, 1 / inputs.length].some((d) => Math.abs(base.weight - d) < 1e-9) || others.every((w) => w === base.weight);
    const baseBlocks = Object.keys(blockWeightsOf[0] ?? {}).length > 0;
    if (!isDefault || baseBlocks) warnings.push(`${method.name} does not use model 0's weight (it is the base; the other weights scale the task vectors): ${baseBlocks ? "its block_weights" : `weight ${base.weight}`} ${baseBlocks ? "are" : "is"} ignored`);
  }
  if (method.normalizable === true && !normalize && blockWeightsOf.some((b) => b && Object.keys(b).length > 0)) {
    // Block weights get the same check as scalar ones (a list on model B alone leaves A at its scalar weight).
    const off = map.blocks.map((b) => [b, weightsFor(b).reduce((s, w) => s + w, 0)] as const).filter(([, total]) => Math.abs(total - 1) > 1e-6);
    if (off.length) warnings.push(`block weights do not sum to 1 in ${off.length} block(s): ${off.slice(0, 6).map(([b, t]) => `${b} ${t.toFixed(4)}`).join(", ")}${off.length > 6 ? ", …" : ""} (used as given; --normalize rescales each block, alpha sets A·(1−α) + B·α)`);
  }
  const paramsFor = (block: string) => {
    const resolved: Record<string, unknown> = { ...params };
    for (const [p, values] of Object.entries(blockParams)) {
      const v = blockValue(values, block);
      if (v !== undefined) resolved[p] = v;
    }
    return resolved;
  };

  const precision = options.outputPrecision ?? "match";
  const outDtypeFor = (dtype: DType): DType => (!isFloatDType(dtype) || precision === "match" ? dtype : PRECISION_DTYPE[precision]);
  const prune = options.prune ?? true;
  const blockOptions: BlockOptions = options.timeEmbedBlock ? { timeEmbedBlock: options.timeEmbedBlock } : {};

  // VAE baking: map each VAE key to the model's naming and check its shape.
  const vaeTargets = new Map<string, { sourceKey: string; descriptor: TensorDescriptor }>();
  if (options.vae) {
    // The prefix the model already uses (SD3 ComfyUI files: first_stage_model., Flux: vae.),
    // else the one of its layout.
    const vaePrefix = first.descriptors.some((d) => d.name.startsWith(LDM_VAE_PREFIX))
      ? LDM_VAE_PREFIX
      : first.descriptors.some((d) => d.name.startsWith(FLUX_VAE_PREFIX))
        ? FLUX_VAE_PREFIX
        : primary.architecture === "flux"
          ? FLUX_VAE_PREFIX
          : LDM_VAE_PREFIX;
    const upBlocks = countUpBlocks(options.vae.descriptors.map((d) => d.name));
    const modelHasVae = first.descriptors.some((d) => d.name.startsWith(vaePrefix));
    for (const d of options.vae.descriptors) {
      const target = vaePrefix + vaeKeyToLdm(d.name, upBlocks);
      const existing = byName[0]!.get(target);
      if (modelHasVae && !existing) throw new MergeError("MERGE_VAE_MISMATCH", `${options.vae.path}: VAE key ${d.name} (as ${target}) does not exist in ${first.path}`, { file: options.vae.path });
      if (existing && !shapesCompatibleIgnoringTrailingOnes(existing.shape, d.shape)) {
        throw new MergeError("MERGE_VAE_MISMATCH", `${target}: ${first.path} has shape ${fmtShape(existing.shape)}, VAE ${options.vae.path} has ${fmtShape(d.shape)}`, { file: options.vae.path });
      }
      vaeTargets.set(target, { sourceKey: d.name, descriptor: d });
    }
  }

  const entries: PlanEntry[] = [];
  const pruned: string[] = [];
  const fixedRoles = method.arity.max !== undefined;
  const names = inputs.map((i) => i.name);
  for (const d of first.descriptors) {
    if (prune && shouldPruneKey(d.name, primary.layout)) {
      pruned.push(d.name);
      continue;
    }
    const block = blockOfKey(map, d.name, blockOptions);
    const vae = vaeTargets.get(d.name);
    if (vae) {
      const dtype = precision === "match" ? d.dtype : outDtypeFor(vae.descriptor.dtype);
      entries.push(entry(d.name, "vae", block, [], [], {}, vae.sourceKey, d.shape, dtype, "baked from VAE"));
      vaeTargets.delete(d.name);
      continue;
    }
    const outDtype = outDtypeFor(d.dtype);
    if (!isFloatDType(d.dtype) || isCopyFromFirstKey(d.name)) {
      entries.push(entry(d.name, "copy", block, [0], [1], {}, d.name, d.shape, outDtype, isFloatDType(d.dtype) ? "index/schedule key: copied, never averaged" : `${d.dtype}: non-float, copied`));
      continue;
    }
    const present = inputs.map((_, i) => i).filter((i) => byName[i]!.has(d.name));
    const missing = inputs.map((_, i) => i).filter((i) => !byName[i]!.has(d.name));
    if (present.length === 1 && inputs.length > 1) {
      entries.push(entry(d.name, "copy", block, [0], [1], {}, d.name, d.shape, outDtype, `only in ${names[0]}: copied`));
      continue;
    }
    if (missing.length > 0 && (fixedRoles || present.length < method.arity.min)) {
      entries.push(entry(d.name, "copy", block, [0], [1], {}, d.name, d.shape, outDtype, `missing in ${missing.map((i) => names[i]).join(", ")}: copied from ${names[0]}`));
      continue;
    }
    const all = weightsFor(block);
    let weights = present.map((i) => all[i]!);
    let note: string | undefined;
    if (missing.length > 0) {
      const totalAll = all.reduce((s, w) => s + w, 0);
      const totalPresent = weights.reduce((s, w) => s + w, 0);
      if (method.usesWeights && totalPresent !== 0) weights = weights.map((w) => (w * totalAll) / totalPresent);
      note = `missing in ${missing.map((i) => names[i]).join(", ")}: merged over ${present.length} models`;
    }
    if (normalize) weights = normalized(weights);
    const merged = extraChannelKeys.get(d.name);
    if (merged !== undefined) {
      const what = d.shape[1] === 9 ? "inpainting" : "instruct-pix2pix";
      const channelsNote = `${what} first conv: input channels 0–${merged - 1} merged, ${merged}–${d.shape[1]! - 1} kept from ${names[0]}`;
      entries.push({ ...entry(d.name, "merge", block, present, weights, paramsFor(block), d.name, d.shape, outDtype, note ? `${note}; ${channelsNote}` : channelsNote), channels: { merged, total: d.shape[1]! } });
      continue;
    }
    entries.push(entry(d.name, "merge", block, present, weights, paramsFor(block), d.name, d.shape, outDtype, note));
  }
  // VAE keys the model lacks are added (a model saved without its VAE).
  for (const [target, { sourceKey, descriptor }] of vaeTargets) {
    entries.push(entry(target, "vae", blockOfKey(map, target, blockOptions), [], [], {}, sourceKey, descriptor.shape, outDtypeFor(descriptor.dtype), "added from VAE"));
  }

  const firstNames = byName[0]!;
  const onlyInLaterModels = [...new Set(inputs.slice(1).flatMap((i) => i.descriptors.map((d) => d.name)).filter((n) => !firstNames.has(n)))];
  if (onlyInLaterModels.length) warnings.push(`${onlyInLaterModels.length} keys exist only in later models and are left out (the output has ${names[0]}'s keys)`);

  // Buffers: per element, each input's bytes and F32 copy and the F32 result, once per buffer set
  // (the executor reads one item while computing the two before it), and the encoded result once
  // per output buffer (writes waiting for the disk).
  const inSize = Math.max(...inputs.flatMap((i) => i.descriptors.map((d) => dtypeSize(d.dtype))), 1);
  const outSize = Math.max(...entries.map((e) => dtypeSize(e.outDtype)), 1);
  const buffersPerElement = (k: number) => MERGE_BUFFER_SETS * (k * (inSize + 4) + 4) + MERGE_OUTPUT_BUFFERS * outSize;
  const perElement = buffersPerElement(inputs.length);
  const budget = options.memoryBudgetBytes ?? DEFAULT_MEMORY_BUDGET;
  const chunkElements = Math.max(1, Math.min(options.maxChunkElements ?? Infinity, Math.max(MIN_CHUNK_ELEMENTS, Math.floor(budget / perElement))));
  const chunking = chunkingOf(method);
  const statisticsPasses = method.statistics?.passes ?? 0;
  let estimatedPeakBytes = 0;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i]!;
    const n = shapeElementCount(e.shape);
    const whole = e.action === "merge" && (chunking === "whole" || e.channels !== undefined);
    const chunk = whole ? Math.max(n, 1) : Math.min(Math.max(n, 1), chunkElements);
    const passes = e.action === "merge" && chunking === "statistics" && n > chunk && !e.channels ? statisticsPasses : 0;
    entries[i] = { ...e, chunkElements: chunk, statisticsPasses: passes };
    const k = Math.max(e.inputs.length, 1);
    estimatedPeakBytes = Math.max(estimatedPeakBytes, Math.min(n, chunk) * buffersPerElement(k));
  }

  const models: PlanModel[] = inputs.map((i, index) => ({ index, path: i.path, name: i.name, weight: i.weight, sha256: i.sha256, architecture: reports[index]! }));
  return {
    method: method.name,
    usesWeights: method.usesWeights,
    params,
    architecture: primary,
    models,
    vaePath: options.vae?.path,
    entries,
    blocks: summarizeBlocks(map.blocks, entries, (b) => (normalize ? normalized(weightsFor(b)) : weightsFor(b)), paramsFor, method.blockParams as readonly string[]),
    outputPrecision: precision,
    pruned,
    onlyInLaterModels,
    outputBytes: entries.reduce((s, e) => s + e.byteLength, 0),
    estimatedPeakBytes,
    chunkElements,
    seed: options.seed ?? 0,
    warnings,
  };
}

/** Weights rescaled to sum to 1 (unchanged when they sum to 0). */
function normalized(weights: number[]): number[] {
  const total = weights.reduce((s, w) => s + w, 0);
  return total === 0 ? weights : weights.map((w) => w / total);
}

function entry(key: string, action: PlanEntry["action"], block: string, inputs: number[], weights: number[], params: Record<string, unknown>, sourceKey: string, shape: readonly number[], outDtype: DType, note: string | undefined): PlanEntry {
  // Chunking is set once every entry is known (it depends on the budget and the inputs' dtypes).
  return { key, action, block, inputs, weights, params, sourceKey, shape, outDtype, byteLength: shapeElementCount(shape) * dtypeSize(outDtype), note, chunkElements: 0, statisticsPasses: 0 };
}

function summarizeBlocks(order: readonly string[], entries: readonly PlanEntry[], weightsFor: (b: string) => number[], paramsFor: (b: string) => Record<string, unknown>, blockParams: readonly string[]): BlockSummary[] {
  const stats = new Map<string, { tensors: number; bytes: number }>();
  for (const e of entries) {
    const s = stats.get(e.block) ?? { tensors: 0, bytes: 0 };
    s.tensors++;
    s.bytes += e.byteLength;
    stats.set(e.block, s);
  }
  return order
    .filter((b) => stats.has(b))
    .map((block) => {
      const p = paramsFor(block);
      return { block, ...stats.get(block)!, weights: weightsFor(block), params: Object.fromEntries(blockParams.map((k) => [k, p[k]])) };
    });
}
