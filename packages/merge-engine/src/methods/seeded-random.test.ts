import { describe, expect, it } from "vitest";
import { createSeededRandom, hashSeed, randomForKey } from "./seeded-random.js";

describe("seeded random", () => {
  it("is reproducible and in [0, 1)", () => {
    const a = createSeededRandom(42);
    const b = createSeededRandom(42);
    const xs = Array.from({ length: 1000 }, () => a());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
    const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(Math.abs(mean - 0.5)).toBeLessThan(0.05);
  });

  it("differs by seed, key and input", () => {
    const first = (r: () => number) => [r(), r(), r()];
    expect(first(randomForKey(1, "k", 0))).not.toEqual(first(randomForKey(2, "k", 0)));
    expect(first(randomForKey(1, "k", 0))).not.toEqual(first(randomForKey(1, "j", 0)));
    expect(first(randomForKey(1, "k", 0))).not.toEqual(first(randomForKey(1, "k", 1)));
    expect(hashSeed("abc")).toBe(0x1a47e90b);
  });
});
