import { describe, expect, it } from "vitest";
import { renderPanel, timeRow, wrapValue } from "./render-panel.js";
import { createTheme, PLAIN_THEME, visibleLength } from "./theme.js";

describe("renderPanel", () => {
  it("draws a titled box around aligned rows", () => {
    const text = renderPanel("ok converted", [["output", "/m/a.safetensors"], ["size", "2.13 GB"]], PLAIN_THEME, 80);
    expect(text).toBe(["+- ok converted -----------+", "| output  /m/a.safetensors |", "| size    2.13 GB          |", "+--------------------------+", ""].join("\n"));
  });

  it("never exceeds the terminal width: long values wrap under themselves", () => {
    const path = `/very/long/${"folder/".repeat(20)}model.safetensors`;
    const lines = renderPanel("✔ converted", [["output", path], ["time", "1.0 s"]], createTheme({ color: true, unicode: true }), 60).trimEnd().split("\n");
    for (const line of lines) expect(visibleLength(line)).toBeLessThanOrEqual(60);
    expect(lines[0]).toContain("╭─");
    expect(lines.at(-1)).toMatch(/^\x1b\[2m╰─+╯/);
    const joined = lines.slice(1, -2).map((l) => l.replace(/\x1b\[[0-9;]*m/g, "").slice(2, -2).trim().replace(/^output\s+/, "")).join("");
    expect(joined).toBe(path);
  });

  it("wraps a value at a space (dropped) or after a slash, and hard only where neither leaves half a line", () => {
    expect(wrapValue("OK: 1131 identical, 0 within cast tolerance, 700 pruned", 24)).toEqual(["OK: 1131 identical, 0", "within cast tolerance,", "700 pruned"]);
    expect(wrapValue("/tmp/models/demo-anime.vae.safetensors", 20)).toEqual(["/tmp/models/", "demo-anime.vae.safet", "ensors"]);
    expect(wrapValue("a".repeat(64), 30)).toEqual(["a".repeat(30), "a".repeat(30), "aaaa"]);
    expect(wrapValue("short", 30)).toEqual(["short"]);
    for (const width of [5, 12, 31]) {
      const text = "stmerge merge --manifest /a/b c/merge_manifest.json --dry-run (review the manifest first)";
      const lines = wrapValue(text, width);
      for (const line of lines) expect(line.length).toBeLessThanOrEqual(width);
      // Nothing is lost but the spaces broken at.
      expect(lines.join("").replace(/ /g, "")).toBe(text.replace(/ /g, ""));
    }
  });

  it("gives total time and each phase's own time", () => {
    expect(timeRow(12_300, [{ phase: "convert", elapsedMs: 8100 }, { phase: "verify", elapsedMs: 3200 }] as never, PLAIN_THEME)).toBe("12.3 s (convert 8.1 s · verify 3.2 s)");
  });
});
