import { describe, expect, it } from "vitest";
import { boundErrorMessage, briefly, KernelError } from "./errors.js";
import { parseSafetensorsHeader } from "./parse-safetensors-header.js";

describe("error messages stay short whatever a file quotes into them", () => {
  it("keeps a message of up to 1000 characters whole", () => {
    const message = `m.safetensors: ${"a".repeat(985)}`;
    expect(message).toHaveLength(1000);
    expect(boundErrorMessage(message)).toBe(message);
    expect(new KernelError("X", "short").message).toBe("short");
  });

  it("leaves out the middle of a longer one: the file at the start and the problem at the end stay", () => {
    const name = "x".repeat(1_000_000);
    const header = new TextEncoder().encode(JSON.stringify({ [name]: { dtype: "Q9", shape: [1], data_offsets: [0, 2] } }));
    let error: unknown;
    try {
      parseSafetensorsHeader(header, 8 + header.byteLength + 2, "/models/hostile.safetensors");
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "SAFETENSORS_UNKNOWN_DTYPE" });
    const { message } = error as Error;
    const whole = `/models/hostile.safetensors: tensor "${name}" has unknown dtype "Q9"`;
    expect(message).toBe(`${whole.slice(0, 600)}… (${whole.length - 900} characters left out) …${whole.slice(-300)}`);
    expect(message.length).toBeLessThan(1000);
  });

  it("never cuts a surrogate pair in two", () => {
    // Pairs of U+1F600 throughout, with and without one character before them: the cuts fall
    // between two pairs, then inside one (a lone surrogate, unless the cut moves).
    const loneSurrogate = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
    for (const message of ["\u{1F600}".repeat(3000), `a${"\u{1F600}".repeat(3000)}`, `ab${"\u{1F600}".repeat(3000)}c`]) {
      const bounded = boundErrorMessage(message);
      expect(bounded.length).toBeLessThan(1000);
      expect(loneSurrogate.test(bounded)).toBe(false);
    }
  });

  it("names an argument briefly: a short string as it is, anything else by its kind and size", () => {
    expect(briefly("I8")).toBe("I8");
    expect(briefly("Q".repeat(100))).toBe(`${"Q".repeat(32)}…`);
    expect(briefly(new Uint8Array(1 << 20))).toBe("a Uint8Array of 1048576 elements");
    expect(briefly([1, 2, 3])).toBe("an array of 3 elements");
    expect(briefly(0.5)).toBe("a number");
    expect(briefly(null)).toBe("null");
    expect(briefly(undefined)).toBe("undefined");
    expect(briefly({})).toBe("an object");
  });
});
