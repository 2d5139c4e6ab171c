import { describe, expect, it } from "vitest";
import { settleAll } from "./settle-all.js";

describe("settleAll", () => {
  it("resolves with every value in order", async () => {
    expect(await settleAll([Promise.resolve(1), new Promise((r) => setTimeout(() => r(2), 5)), Promise.resolve(3)])).toEqual([1, 2, 3]);
  });

  it("rejects with the first rejection only after the slower jobs have finished", async () => {
    let slowFinished = false;
    const slow = new Promise<number>((resolve) => setTimeout(() => ((slowFinished = true), resolve(1)), 30));
    const failing = Promise.reject(new Error("range 0 failed"));
    const later = new Promise<number>((_, reject) => setTimeout(() => reject(new Error("range 2 failed")), 10));
    await expect(settleAll([failing, slow, later])).rejects.toThrow("range 0 failed");
    expect(slowFinished).toBe(true);
  });
});
