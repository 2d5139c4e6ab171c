import { describe, expect, it } from "vitest";
import { PyDict, PyStorage, PyTensor } from "@stmerge/safe-pickle";
import { findStateDict } from "./find-state-dict.js";

const storage = new PyStorage("0", "F32", "float32", 4, 16, "cpu");
const tensor = () => new PyTensor(storage, "F32", "float32", 4, 0, [4], [1]);
const dict = (entries: Record<string, unknown>): PyDict => {
  const d = new PyDict();
  for (const [k, v] of Object.entries(entries)) d.entries.set(k, v as never);
  return d;
};

describe("findStateDict", () => {
  it("follows state_dict and leaves training extras out", () => {
    const found = findStateDict(dict({ epoch: 3, state_dict: dict({ "a.weight": tensor(), "b.bias": tensor() }), optimizer_states: [dict({ x: tensor() })] }));
    expect(found.wrapperPath).toEqual(["state_dict"]);
    expect(found.tensors.map((t) => t.name)).toEqual(["a.weight", "b.bias"]);
  });

  it("prefers params_ema over params, and nested wrappers are followed", () => {
    expect(findStateDict(dict({ params: dict({ w: tensor() }), params_ema: dict({ w: tensor() }) })).wrapperPath).toEqual(["params_ema"]);
    expect(findStateDict(dict({ model: dict({ state_dict: dict({ w: tensor() }) }) })).wrapperPath).toEqual(["model", "state_dict"]);
  });

  it("a bare dict is the state dict; nested dicts of tensors join keys with dots", () => {
    const found = findStateDict(dict({ "x.weight": tensor(), sub: dict({ y: tensor() }), step: 5 }));
    expect(found.wrapperPath).toEqual([]);
    expect(found.tensors.map((t) => t.name)).toEqual(["x.weight", "sub.y"]);
    expect(found.skipped).toEqual(["step"]);
  });

  it("textual inversion's single string_to_param tensor is named emb_params", () => {
    const found = findStateDict(dict({ string_to_token: dict({ "*": 265 }), string_to_param: dict({ "*": tensor() }), name: "x" }));
    expect(found.tensors.map((t) => t.name)).toEqual(["emb_params"]);
  });

  it("keys like __proto__ stay data and a wrapper key holding no tensors is not followed", () => {
    const root = new PyDict();
    root.entries.set("__proto__", tensor());
    root.entries.set("model", "resnet");
    root.entries.set("constructor", tensor());
    const found = findStateDict(root);
    expect(found.tensors.map((t) => t.name)).toEqual(["__proto__", "constructor"]);
  });
});

describe("findStateDict on memo-shared dicts", () => {
  it("scans a dict shared by 20,000 keys once, not once per key (linear, not quadratic)", () => {
    // Like a pickle that memoizes one big dict and stores it under every key of another.
    let scans = 0;
    class CountingMap extends Map<unknown, unknown> {
      override values(): MapIterator<unknown> {
        scans++;
        return super.values();
      }
    }
    const shared = new PyDict();
    const entries = new CountingMap();
    for (let i = 0; i < 20_000; i++) entries.set(`k${i}`, i);
    Object.defineProperty(shared, "entries", { value: entries });
    const root = new PyDict();
    for (let i = 0; i < 20_000; i++) root.entries.set(`key.${i}`, shared);
    root.entries.set("w", tensor());
    const found = findStateDict(root);
    expect(found.tensors.map((t) => t.name)).toEqual(["w"]);
    expect(found.skipped).toHaveLength(20_000);
    expect(scans).toBe(1);
  });
});
