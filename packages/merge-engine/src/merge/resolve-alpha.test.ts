import { describe, expect, it } from "vitest";
import { layoutDescriptors } from "../../test/load-layout.js";
import { TINY_SD1 } from "@stmerge/test-utils";
import { addDifference } from "../methods/add-difference.js";
import { ties } from "../methods/ties.js";
import { weightedSum } from "../methods/weighted-sum.js";
import { buildMergePlan, type MergePlanInput } from "./build-merge-plan.js";
import { resolveAlpha } from "./resolve-alpha.js";

const model = (weight: number, blockWeights: Record<string, number> | number[] = {}) => ({ weight, blockWeights });
// SuperMerger's SD1 order: BASE, IN00 … IN11, M00, OUT00 … OUT11.
const list26 = Array.from({ length: 26 }, (_, i) => i / 25);

describe("resolveAlpha: the two-model α of A1111 / SuperMerger", () => {
  it("weighted_sum: A·(1−α) + B·α, warning when models[].weight said otherwise", () => {
    const r = resolveAlpha(0.3, weightedSum, [model(0.5), model(0.5)], {}, {});
    expect(r.models.map((m) => m.weight)).toEqual([0.7, 0.3]);
    expect(r.warnings[0]).toContain("alpha 0.3 sets the weights to 0.7/0.3");
    expect(resolveAlpha(0.3, weightedSum, [model(0.7), model(0.3)], {}, {}).warnings).toEqual([]);
  });

  it("a 26-value list gives every block (1−α, α), not [0.5, α]", () => {
    const r = resolveAlpha(list26, weightedSum, [model(0.5), model(0.5)], {}, {});
    const descriptors = TINY_SD1.map((t) => ({ name: t.name, dtype: t.dtype ?? ("F16" as const), shape: t.shape, byteLength: t.shape.reduce((a, b) => a * b, 1) * (t.dtype === "I64" ? 8 : t.dtype === "F32" ? 4 : 2) }));
    const inputs: MergePlanInput[] = r.models.map((m, i) => ({ name: `m${i}`, path: `m${i}`, descriptors, metadata: {}, weight: m.weight, blockWeights: m.blockWeights }));
    const plan = buildMergePlan(inputs, { method: weightedSum });
    for (const b of plan.blocks) expect(b.weights[0]! + b.weights[1]!, b.block).toBeCloseTo(1, 12);
    expect(plan.blocks.find((b) => b.block === "OUT03")!.weights[1]).toBeCloseTo(list26[1 + 12 + 1 + 3]!, 12);
    expect(plan.warnings.join("\n")).not.toContain("do not sum to 1");
  });

  it("add_difference: α is the multiplier M (block lists go to block_params.alpha)", () => {
    expect(resolveAlpha(0.6, addDifference, [model(1), model(1), model(1)], {}, {}).params).toEqual({ alpha: 0.6 });
    expect(resolveAlpha(list26, addDifference, [model(1), model(1), model(1)], {}, {}).blockParams).toEqual({ alpha: list26 });
    expect(() => resolveAlpha(0.6, addDifference, [model(1), model(1), model(1)], { alpha: 0.4 }, {})).toThrow(expect.objectContaining({ code: "MERGE_BAD_PARAMS" }));
  });

  it("refused where it cannot mean anything: three models, methods without alpha, with block_weights", () => {
    expect(() => resolveAlpha(0.5, weightedSum, [model(1), model(1), model(1)], {}, {})).toThrow(expect.objectContaining({ code: "MERGE_BAD_PARAMS" }));
    expect(() => resolveAlpha(0.5, ties, [model(1), model(1)], {}, {})).toThrow(expect.objectContaining({ code: "MERGE_BAD_PARAMS" }));
    expect(() => resolveAlpha(0.5, weightedSum, [model(0.5, { IN04: 1 }), model(0.5)], {}, {})).toThrow(expect.objectContaining({ code: "MERGE_BAD_PARAMS" }));
  });
});

describe("block weights that do not sum to 1", () => {
  it("are warned like scalar weights (a list on model B alone), and --normalize rescales each block", () => {
    const descriptors = layoutDescriptors("sd1-ldm");
    const inputs: MergePlanInput[] = [
      { name: "a", path: "a", descriptors, metadata: {}, weight: 0.5 },
      { name: "b", path: "b", descriptors, metadata: {}, weight: 0.5, blockWeights: list26 },
    ];
    expect(buildMergePlan(inputs, { method: weightedSum }).warnings.join("\n")).toMatch(/block weights do not sum to 1 in \d+ block\(s\): BASE 0\.5000/);
    const normalized = buildMergePlan(inputs, { method: weightedSum, params: { normalize: true } });
    expect(normalized.warnings.join("\n")).not.toContain("do not sum to 1");
    for (const b of normalized.blocks) expect(b.weights[0]! + b.weights[1]!, b.block).toBeCloseTo(1, 12);
  });
});
