import { describe, expect, it } from "vitest";
import { stripDataParallelPrefixes } from "./strip-prefixes.js";

describe("stripDataParallelPrefixes", () => {
  it("strips module. from every key that has it", () => {
    expect(stripDataParallelPrefixes(["module.a", "module.b.c"]).map((s) => s.name)).toEqual(["a", "b.c"]);
  });
  it("keeps the prefix where stripping would collide or leave nothing", () => {
    expect(stripDataParallelPrefixes(["a", "module.a", "module."]).map((s) => s.name)).toEqual(["a", "module.a", "module."]);
  });
  it("leaves other names alone", () => {
    expect(stripDataParallelPrefixes(["modules.x", "x.module.y"]).map((s) => s.name)).toEqual(["modules.x", "x.module.y"]);
  });
});
