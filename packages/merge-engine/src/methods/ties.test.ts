import { describe, expect, it } from "vitest";
import { randomArray, runMethod } from "../../test/run-method.js";
import { ties } from "./ties.js";

/** Straightforward TIES: sort to trim, vote by sign of the weighted sum, disjoint weighted mean. */
function referenceTies(base: number[], models: number[][], weights: number[], density: number, lambda: number): number[] {
  const k = Math.round(density * base.length);
  const deltas = models.map((m) => {
    const d = m.map((x, i) => x - base[i]!);
    const sorted = d.map(Math.abs).sort((x, y) => y - x);
    const t = k <= 0 ? Infinity : k >= d.length ? 0 : sorted[k - 1]!;
    return d.map((x) => (Math.abs(x) >= t ? x : 0));
  });
  return base.map((b, e) => {
    const elected = Math.sign(deltas.reduce((s, d, i) => s + weights[i]! * d[e]!, 0));
    let num = 0;
    let den = 0;
    deltas.forEach((d, i) => {
      if (d[e] !== 0 && Math.sign(d[e]!) === elected) {
        num += weights[i]! * d[e]!;
        den += weights[i]!;
      }
    });
    return b + lambda * (den ? num / den : 0);
  });
}

describe("ties", () => {
  it("matches the reference on random tensors", async () => {
    const base = randomArray(40, 10);
    const models = [randomArray(40, 11), randomArray(40, 12), randomArray(40, 13)];
    const weights = [0, 0.5, 0.3, 0.2];
    const out = await runMethod(ties, [base, ...models], { density: 0.3, lambda: 1.2 }, { weights });
    const ref = referenceTies(base, models, weights.slice(1), 0.3, 1.2);
    out.forEach((v, i) => expect(v).toBeCloseTo(ref[i]!, 5));
  });

  it("elects the majority sign and averages only agreeing deltas", async () => {
    // Deltas +1, +1, −3: their sum −1 elects "−", so only −3 is averaged.
    const out = await runMethod(ties, [[0], [1], [1], [-3]], { density: 1 }, { weights: [1, 1, 1, 1] });
    expect(out).toEqual([-3]);
    const out2 = await runMethod(ties, [[0], [2], [2], [-3]], { density: 1 }, { weights: [1, 1, 1, 1] });
    expect(out2).toEqual([2]);
  });

  it("density 0 returns the base", async () => {
    expect(await runMethod(ties, [[1, 2], [5, 5]], { density: 0 })).toEqual([1, 2]);
  });
});
