import { describe, expect, it } from "vitest";
import { describeError } from "./cli-error.js";
import { confineToTerminal, escapeControl } from "./terminal-text.js";
import { StmergeError } from "@stmerge/core-tensors";

// eslint-disable-next-line no-control-regex
const TERMINAL_CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe("escapeControl", () => {
  it("writes every control character of a data string as a visible escape, leaving text alone", () => {
    expect(escapeControl("posix.system\r\x1b[2KCLEAN\n")).toBe("posix.system\\r\\e[2KCLEAN\\n");
    expect(escapeControl("a\x07b\x00c\x7fd\x9be\u202ef\u2028g\tz")).toBe("a\\x07b\\x00c\\x7fd\\x9be\\u202ef\\u2028g\\tz");
    expect(escapeControl("lone \ud800 and \udc00 surrogates")).toBe("lone \\ud800 and \\udc00 surrogates");
    expect(escapeControl("ünïcødé 模型 🙂 model.safetensors")).toBe("ünïcødé 模型 🙂 model.safetensors");
    expect(escapeControl(42)).toBe("42");
  });
});

describe("confineToTerminal", () => {
  it("keeps newlines, tabs and colour sequences but escapes carriage returns, OSC titles, bells and C1", () => {
    expect(confineToTerminal("\x1b[32mok\x1b[39m\tnext\n")).toBe("\x1b[32mok\x1b[39m\tnext\n");
    const hostile = confineToTerminal("UNSAFE x\rCLEAN \x1b]0;pwned\x07 \x9b2J \u202eevil");
    expect(hostile).toBe("UNSAFE x\\rCLEAN \\e]0;pwned\\x07 \\x9b2J \\u202eevil");
    expect(hostile).not.toMatch(TERMINAL_CONTROL);
  });
});

describe("describeError", () => {
  it("prints an error naming a hostile file on one line, control characters escaped", () => {
    const { text } = describeError(new StmergeError("SAFETENSORS_BAD_HEADER", "evil\r\x1b[2Kname.safetensors: bad header\nCLEAN"), false);
    expect(text).toBe("stmerge: evil\\r\\e[2Kname.safetensors: bad header\\nCLEAN [SAFETENSORS_BAD_HEADER]");
    const debug = describeError(new StmergeError("X_Y", "a\x1b]0;t\x07b"), true).text;
    expect(debug.split("\n").every((l) => !TERMINAL_CONTROL.test(l))).toBe(true);
    const errno = describeError(Object.assign(new Error("ENOENT: no such file, open '/m/\x1b[31mred'"), { code: "ENOENT", path: "/m/\x1b[31mred" }), false).text;
    expect(errno).toContain("/m/\\e[31mred");
    expect(errno).not.toMatch(TERMINAL_CONTROL);
  });
});
