import { PyDict, PyRecord, PyTensor, type NamedTensor, type PyValue } from "@stmerge/safe-pickle";
import { STATE_DICT_KEYS } from "../models/state-dict-keys.js";

export interface FoundStateDict {
  /** The tensors of the state dict under their keys (nested dicts joined with "."). */
  readonly tensors: readonly NamedTensor[];
  /** The wrapper keys followed from the root, e.g. `["state_dict"]`; empty for a bare dict. */
  readonly wrapperPath: readonly string[];
  /** Keys whose values are not tensors (step counters, names, optimizer state), left out. */
  readonly skipped: readonly string[];
}

function entriesOf(value: PyValue): ReadonlyMap<PyValue, PyValue> | undefined {
  if (value instanceof PyDict) return value.entries;
  if (value instanceof PyRecord && value.dictItems.size > 0) return value.dictItems;
  return undefined;
}

/**
 * Whether a dict holds a tensor or a dict among its values, computed once per dict: memo-shared
 * dicts are met once per reference, and re-scanning each time made discovery quadratic.
 */
function holdsTensors(value: PyValue, cache: Map<object, boolean>): boolean {
  const entries = entriesOf(value);
  if (!entries) return false;
  const known = cache.get(value as object);
  if (known !== undefined) return known;
  let holds = false;
  for (const v of entries.values()) {
    if (v instanceof PyTensor || entriesOf(v) !== undefined) {
      holds = true;
      break;
    }
  }
  cache.set(value as object, holds);
  return holds;
}

/**
 * Finds the state dict inside a checkpoint's unpickled root: follows `state_dict`, `params_ema`
 * (upscalers keep their EMA weights there), `params`, `model`, `module` or textual inversion's
 * `string_to_param` while they lead to dicts of tensors; otherwise the root is a bare state dict.
 * A textual inversion's single `*` tensor is named `emb_params`, the name loaders expect.
 */
export function findStateDict(root: PyValue): FoundStateDict {
  let node = root;
  const wrapperPath: string[] = [];
  const holds = new Map<object, boolean>();
  for (let depth = 0; depth < 4; depth++) {
    const entries = entriesOf(node);
    if (!entries) break;
    const next = STATE_DICT_KEYS.find((k) => entries.has(k) && holdsTensors(entries.get(k)!, holds));
    if (next === undefined) break;
    node = entries.get(next)!;
    wrapperPath.push(next);
  }
  const tensors: NamedTensor[] = [];
  const skipped: string[] = [];
  // Iterative flattening with a visited set: nested dicts join keys with ".", shared or cyclic
  // references are visited once.
  const visited = new Set<object>();
  const stack: Array<{ value: PyValue; prefix: string }> = [{ value: node, prefix: "" }];
  while (stack.length > 0) {
    const { value, prefix } = stack.pop()!;
    const entries = entriesOf(value);
    if (!entries || visited.has(value as object)) continue;
    visited.add(value as object);
    const children: Array<{ value: PyValue; prefix: string }> = [];
    for (const [k, v] of entries) {
      const key = typeof k === "string" || typeof k === "number" || typeof k === "bigint" ? String(k) : undefined;
      if (key === undefined) continue;
      const name = prefix + key;
      if (v instanceof PyTensor) tensors.push({ name, tensor: v });
      else if (entriesOf(v) && holdsTensors(v, holds)) children.push({ value: v, prefix: `${name}.` });
      else skipped.push(name);
    }
    for (let i = children.length - 1; i >= 0; i--) stack.push(children[i]!);
  }
  if (wrapperPath[wrapperPath.length - 1] === "string_to_param" && tensors.length === 1) {
    return { tensors: [{ name: "emb_params", tensor: tensors[0]!.tensor }], wrapperPath, skipped };
  }
  return { tensors, wrapperPath, skipped };
}
