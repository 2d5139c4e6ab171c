import { describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

describe("stmerge edit without a terminal", () => {
  it("exits 2 with one line pointing at JSON editing and merge --dry-run", async () => {
    const io = memoryIo({ env: { STMERGE_NO_BANNER: "1" } });
    expect(await runCli(["edit", "models/merge.json"], io)).toBe(2);
    const lines = io.err().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("models/merge.json: stmerge edit needs an interactive terminal");
    expect(lines[0]).toContain("`stmerge merge --manifest models/merge.json --dry-run`");
    expect(io.out()).toBe("");
  });
});
