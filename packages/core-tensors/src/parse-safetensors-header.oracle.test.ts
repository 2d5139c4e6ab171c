import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { REFERENCE_HEADER_CASES } from "../test/reference-header-cases.js";
import { rawSafetensors } from "../test/safetensors-test-helpers.js";
import { parseSafetensorsHeader, parseSafetensorsHeaderLength } from "./parse-safetensors-header.js";

// Live cross-check: the Python safetensors library (the Rust reference underneath) accepts or
// refuses each hostile header exactly as we do. Runs only under `pnpm test:oracle`.
const python = process.env.STMERGE_ORACLE_PYTHON;

const LOADER = `
import sys
from safetensors.torch import load
try:
    load(sys.stdin.buffer.read())
    print("accepted")
except Exception as e:
    print("refused")
`;

describe.skipIf(!python)("safetensors header strictness against the reference", () => {
  it.each(REFERENCE_HEADER_CASES)("$name: the reference agrees", ({ header }) => {
    const bytes = rawSafetensors(header, 4);
    let ours = "accepted";
    try {
      const n = parseSafetensorsHeaderLength(bytes.subarray(0, 8), bytes.byteLength, "x");
      parseSafetensorsHeader(bytes.subarray(8, 8 + n), bytes.byteLength, "x");
    } catch {
      ours = "refused";
    }
    const theirs = execFileSync(python!, ["-c", LOADER], { input: bytes, encoding: "utf8" }).trim();
    expect(ours).toBe(theirs);
  });
});
