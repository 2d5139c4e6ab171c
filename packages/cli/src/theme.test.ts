import { describe, expect, it } from "vitest";
import { bannerText } from "./cli-context.js";
import { createTheme, PLAIN_THEME, resolveColor, resolveUnicode, visibleLength } from "./theme.js";

describe("colour decision", () => {
  it("follows the terminal by default", () => {
    expect(resolveColor({}, true, true)).toBe(true);
    expect(resolveColor({}, true, false)).toBe(false);
  });
  it("is off with --no-color, NO_COLOR or TERM=dumb, and on with FORCE_COLOR in a pipe", () => {
    expect(resolveColor({}, false, true)).toBe(false);
    expect(resolveColor({ NO_COLOR: "1" }, true, true)).toBe(false);
    expect(resolveColor({ NO_COLOR: "1", FORCE_COLOR: "1" }, true, true)).toBe(false);
    expect(resolveColor({ TERM: "dumb" }, true, true)).toBe(false);
    expect(resolveColor({ FORCE_COLOR: "1" }, true, false)).toBe(true);
    expect(resolveColor({ FORCE_COLOR: "0" }, true, true)).toBe(true);
    expect(resolveColor({ FORCE_COLOR: "0" }, true, false)).toBe(false);
    expect(resolveColor({ FORCE_COLOR: "1" }, false, true)).toBe(false);
  });
  it("uses ASCII glyphs on dumb and linux consoles", () => {
    expect(resolveUnicode({ TERM: "xterm-256color" })).toBe(true);
    expect(resolveUnicode({ TERM: "dumb" })).toBe(false);
    expect(resolveUnicode({ TERM: "linux" })).toBe(false);
    expect(resolveUnicode({ STMERGE_ASCII: "1" })).toBe(false);
  });
});

describe("theme", () => {
  it("colours by meaning only when colour is on", () => {
    const on = createTheme({ color: true, unicode: true });
    expect(on.success("ok")).toBe("\x1b[32mok\x1b[39m");
    expect(on.warning("w")).toBe("\x1b[33mw\x1b[39m");
    expect(on.error("e")).toBe("\x1b[31me\x1b[39m");
    expect(on.path("/p")).toBe("\x1b[36m/p\x1b[39m");
    expect(on.number("5")).toBe("\x1b[1m5\x1b[22m");
    expect(visibleLength(on.number("12345"))).toBe(5);
    expect(PLAIN_THEME.success("ok")).toBe("ok");
    expect(PLAIN_THEME.glyphs.barFull).toBe("#");
  });
});

describe("banner", () => {
  it("fits 80 columns, packing parts onto lines and shortening a long one", () => {
    const longReason = `cpu (GPU backend failed to load: Cannot find module '/home/u/stmerge/node_modules/.pnpm/@tensorflow+tfjs-node-gpu@4.22.0/node_modules/@tensorflow/tfjs-node-gpu/lib/napi-v8/tfjs_binding.node')`;
    const text = bannerText(["stmerge 0.1.0", `compute ${longReason}`, "cache 12 entries", "no CivitAI key (public look-ups only)"], PLAIN_THEME);
    const lines = text.trimEnd().split("\n");
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(79);
    expect(lines[0]).toBe("stmerge 0.1.0");
    expect(lines[1]).toMatch(/^ {2}compute cpu \(GPU backend failed to load: .*…$/);
    expect(lines[2]).toBe("  cache 12 entries · no CivitAI key (public look-ups only)");
  });
  it("is one line when it fits", () => {
    expect(bannerText(["stmerge 0.1.0", "cache 3 entries", "no CivitAI key (public look-ups only)"], PLAIN_THEME)).toBe("stmerge 0.1.0 · cache 3 entries · no CivitAI key (public look-ups only)\n");
  });
});
