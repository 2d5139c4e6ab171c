import { PyDict, PyRecord, PySet, PyTensor, PyTuple, type PyValue } from "./py-values.js";

/** A tensor found in the unpickled structure, with the path of keys and indices that leads to it. */
export interface FoundTensor {
  readonly path: readonly (string | number)[];
  readonly tensor: PyTensor;
}

/** Tuple keys are spelled out this deep and this wide; the rest is "..." (the pickle decides the depth). */
const KEY_TEXT_DEPTH = 4;
const KEY_TEXT_ITEMS = 16;

export function keyText(key: PyValue, depth = 0): string | number {
  if (typeof key === "string" || typeof key === "number") return key;
  if (typeof key === "bigint" || typeof key === "boolean") return String(key);
  if (key === null) return "None";
  if (key instanceof PyTuple) {
    if (depth >= KEY_TEXT_DEPTH) return "(...)";
    const shown = key.items.slice(0, KEY_TEXT_ITEMS).map((k) => String(keyText(k, depth + 1)));
    if (key.items.length > KEY_TEXT_ITEMS) shown.push("...");
    return `(${shown.join(", ")})`;
  }
  return `<${typeof key}>`;
}

/** Children of a container value with the path step that leads to each. */
function childrenOf(value: PyValue): Array<[string | number, PyValue]> {
  if (Array.isArray(value)) return value.map((v, i) => [i, v]);
  if (value instanceof PyTuple) return value.items.map((v, i) => [i, v]);
  if (value instanceof PyDict) return [...value.entries].map(([k, v]) => [keyText(k), v]);
  if (value instanceof PySet) return value.items.map((v, i) => [i, v]);
  if (value instanceof PyRecord) {
    const out: Array<[string | number, PyValue]> = [];
    value.args.forEach((v, i) => out.push([`args.${i}`, v]));
    if (value.state !== null) out.push(["state", value.state]);
    value.listItems.forEach((v, i) => out.push([i, v]));
    for (const [k, v] of value.dictItems) out.push([keyText(k), v]);
    return out;
  }
  return [];
}

/**
 * Every tensor reachable from `root`, each reported once under the first path that reaches it.
 * Iterative with a visited set, so deep nesting cannot overflow the call stack and shared memo
 * references (exponential "billion laughs" structures, cycles) are walked once.
 */
export function findTensors(root: PyValue): FoundTensor[] {
  interface Step {
    readonly value: PyValue;
    readonly parent: Step | undefined;
    readonly step: string | number;
  }
  // Paths are kept as parent links and spelled out only for tensors, so a 200,000-deep
  // nesting costs linear memory, not quadratic.
  const pathOf = (node: Step): (string | number)[] => {
    const path: (string | number)[] = [];
    for (let n: Step | undefined = node; n?.parent; n = n.parent) path.push(n.step);
    return path.reverse();
  };
  const found: FoundTensor[] = [];
  const visited = new Set<object>();
  const stack: Step[] = [{ value: root, parent: undefined, step: "" }];
  while (stack.length > 0) {
    const node = stack.pop()!;
    const { value } = node;
    if (value === null || typeof value !== "object" || value instanceof Uint8Array) continue;
    if (visited.has(value)) continue;
    visited.add(value);
    if (value instanceof PyTensor) {
      found.push({ path: pathOf(node), tensor: value });
      continue;
    }
    const children = childrenOf(value);
    for (let i = children.length - 1; i >= 0; i--) {
      const [step, child] = children[i]!;
      if (child !== null && typeof child === "object" && !(child instanceof Uint8Array) && !visited.has(child)) stack.push({ value: child, parent: node, step });
    }
  }
  return found;
}
