import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { spawnSync } from "node:child_process";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error plain ESM script without type declarations
import { checkBoundaries } from "../check-boundaries.mjs";

const repoRoot = join(import.meta.dirname, "..", "..", "..");

// One scratch copy of the package manifests and sources (not node_modules, dist, fixtures or
// dot folders, which the check skips) serves every test: copying takes a second or two, so each
// test breaks the copy with `edit` and its edits are undone after it.
let scratch: string;
const undo: (() => void)[] = [];
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "stmerge-boundaries-"));
  for (const group of ["packages", "apps", "examples"]) {
    cpSync(join(repoRoot, group), join(scratch, group), { recursive: true, filter: (src) => !/(^|\/)(node_modules|dist|fixtures|\.[^/]+)(\/|$)/.test(relative(repoRoot, src)) });
  }
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
afterEach(() => {
  for (const step of undo.splice(0).reverse()) step();
  // Back as it was: the next test sees only its own breakage.
  expect(checkBoundaries(scratch)).toEqual([]);
});

/** The scratch copy of the repository, to break with `edit`. */
function scratchCopy(): string {
  return scratch;
}

/** Writes `text` to `path` in the scratch copy; after the test the file is as it was (or gone). */
function edit(path: string, text: string): void {
  const before = existsSync(path) ? readFileSync(path, "utf8") : undefined;
  undo.push(() => (before === undefined ? rmSync(path) : writeFileSync(path, before)));
  writeFileSync(path, text);
}

describe("checkBoundaries", () => {
  it("passes on the repository as it is", () => {
    expect(checkBoundaries(repoRoot)).toEqual([]);
  });

  it("fails when core-tensors declares a sibling dependency", () => {
    const dir = scratchCopy();
    const manifestPath = join(dir, "packages/core-tensors/package.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.dependencies = { ...manifest.dependencies, "@stmerge/cache": "workspace:*" };
    edit(manifestPath, JSON.stringify(manifest));
    const violations: string[] = checkBoundaries(dir);
    expect(violations.some((v) => v.includes("@stmerge/core-tensors must not depend on @stmerge/cache"))).toBe(true);
  });

  it("fails when civitai-client imports the cache, even undeclared", () => {
    const dir = scratchCopy();
    edit(join(dir, "packages/civitai-client/src/sneaky.ts"), 'import { x } from "@stmerge/cache";\nexport const y = x;\n');
    const violations: string[] = checkBoundaries(dir);
    expect(violations.some((v) => v.includes("imports @stmerge/cache"))).toBe(true);
  });

  it("checks tests and benchmarks too: a core-tensors test may not import the merge engine", () => {
    const dir = scratchCopy();
    edit(join(dir, "packages/core-tensors/src/sneaky.test.ts"), 'import { runMerge } from "@stmerge/merge-engine";\nexport const y = runMerge;\n');
    edit(join(dir, "packages/cache/bench/sneaky.mjs"), 'import { x } from "@stmerge/civitai-client";\n');
    const violations: string[] = checkBoundaries(dir);
    expect(violations.some((v) => v.includes("sneaky.test.ts") && v.includes("imports @stmerge/merge-engine"))).toBe(true);
    expect(violations.some((v) => v.includes("sneaky.mjs") && v.includes("imports @stmerge/civitai-client"))).toBe(true);
  });

  it("checks the examples: a plugin may use only the engine's public packages", () => {
    const dir = scratchCopy();
    edit(join(dir, "examples/example-plugin/src/sneaky.ts"), 'import { x } from "@stmerge/safe-pickle";\nexport const y = x;\n');
    const violations: string[] = checkBoundaries(dir);
    expect(violations.some((v) => v.includes("examples/example-plugin/src/sneaky.ts") && v.includes("imports @stmerge/safe-pickle"))).toBe(true);
  });

  it("keeps test-only helpers out of shipped sources", () => {
    const dir = scratchCopy();
    edit(join(dir, "packages/cache/src/uses-test-utils.ts"), 'import { x } from "@stmerge/test-utils";\nexport const y = x;\n');
    const violations: string[] = checkBoundaries(dir);
    expect(violations.some((v) => v.includes("uses-test-utils.ts") && v.includes("for tests only"))).toBe(true);
  });

  it("lets library tests print (only shipped library code may not)", () => {
    const dir = scratchCopy();
    edit(join(dir, "packages/safe-pickle/src/chatty.test.ts"), 'console.log("diagnostics");\n');
    expect(checkBoundaries(dir).some((v: string) => v.includes("chatty.test.ts"))).toBe(false);
  });

  it("fails when a library prints", () => {
    const dir = scratchCopy();
    edit(join(dir, "packages/safe-pickle/src/loud.ts"), 'export function f() {\n  console.log("hi");\n}\n');
    const violations: string[] = checkBoundaries(dir);
    expect(violations.some((v) => v.includes("loud.ts:2") && v.includes("prints"))).toBe(true);
  });

  it("exits non-zero from the command line on a violation", () => {
    const dir = scratchCopy();
    const manifestPath = join(dir, "packages/safe-pickle/package.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.dependencies = { ...manifest.dependencies, "@stmerge/merge-engine": "workspace:*" };
    edit(manifestPath, JSON.stringify(manifest));
    const result = spawnSync(process.execPath, [join(import.meta.dirname, "..", "check-boundaries.mjs"), dir], { encoding: "utf8" });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("must not depend on @stmerge/merge-engine");
  });
});
