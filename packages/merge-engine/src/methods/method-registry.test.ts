import { describe, expect, it } from "vitest";
import { z } from "zod";
import { createMethodRegistry } from "./method-registry.js";
import { defineMergeMethod } from "./merge-method.js";

describe("method registry", () => {
  it("holds the built-ins and the Python alias", () => {
    const r = createMethodRegistry();
    expect(r.names()).toEqual(["weighted_sum", "add_difference", "train_difference", "ties", "dare", "slerp", "consensus"]);
    expect(r.get("weighted").name).toBe("weighted_sum");
  });

  it("names the available methods for an unknown one", () => {
    expect(() => createMethodRegistry().get("nope")).toThrow(expect.objectContaining({ code: "MERGE_UNKNOWN_METHOD", message: expect.stringContaining("weighted_sum") }));
  });

  it("registers a plugin and refuses duplicates and malformed plugins", () => {
    const r = createMethodRegistry();
    const median = defineMergeMethod({ name: "median", description: "", params: z.object({}), arity: { min: 1 }, usesWeights: false, blockParams: [], elementwise: true, merge: async (ctx) => ctx.out });
    r.register(median);
    expect(r.get("median")).toBe(median);
    expect(() => r.register(median)).toThrow(expect.objectContaining({ code: "MERGE_METHOD_DUPLICATE" }));
    expect(() => r.register({ name: "Bad Name" } as never)).toThrow(expect.objectContaining({ code: "MERGE_PLUGIN_INVALID" }));
    expect(() => r.register({ ...median, name: "x", merge: undefined } as never)).toThrow(/merge/);
  });
});
