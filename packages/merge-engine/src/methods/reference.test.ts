import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { runMethod } from "../../test/run-method.js";
import { createMethodRegistry } from "./method-registry.js";

/** Expected outputs computed independently with PyTorch by tools/fixtures/merge_reference.py. */
const fixture = JSON.parse(readFileSync(fileURLToPath(new URL("../../test/fixtures/merge-reference.json", import.meta.url)), "utf8")) as {
  cases: { method: string; inputs: number[][]; params: Record<string, unknown>; weights: number[]; expected: number[] }[];
};

describe("methods against PyTorch references", () => {
  const registry = createMethodRegistry();
  it.each(fixture.cases.map((c) => [c.method, c] as const))("%s", async (_name, c) => {
    const out = await runMethod(registry.get(c.method), c.inputs, c.params, { weights: c.weights });
    expect(out).toHaveLength(c.expected.length);
    out.forEach((v, i) => expect(Math.abs(v - c.expected[i]!)).toBeLessThanOrEqual(2e-7 + 2e-6 * Math.abs(c.expected[i]!)));
  });
});
