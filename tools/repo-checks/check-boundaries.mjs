// Enforces the package boundaries of DEVELOPERS.md: which sibling each package may depend on
// (declared in package.json and actually imported), and that libraries never print.
import { readFileSync, readdirSync, statSync, existsSync } from "node:fs";
import { join, relative } from "node:path";

/** Allowed sibling dependencies by package name; anything else is a violation. */
export const ALLOWED_DEPENDENCIES = {
  "@stmerge/core-tensors": [],
  "@stmerge/safe-pickle": ["@stmerge/core-tensors"],
  "@stmerge/merge-engine": ["@stmerge/core-tensors", "@stmerge/safe-pickle"],
  "@stmerge/cache": ["@stmerge/core-tensors"],
  "@stmerge/civitai-client": [],
  "@stmerge/model-library": ["@stmerge/core-tensors", "@stmerge/cache"],
  "@stmerge/cli": ["@stmerge/core-tensors", "@stmerge/safe-pickle", "@stmerge/merge-engine", "@stmerge/cache", "@stmerge/civitai-client", "@stmerge/model-library"],
  stmerge: ["@stmerge/cli"],
  // A third-party plugin sees only the public API of the engine (and core-tensors in its tests).
  "@stmerge/example-plugin": ["@stmerge/merge-engine", "@stmerge/core-tensors"],
};

/** Test-only helpers every package's tests may use (a private, never-published package). */
const TEST_ONLY = ["@stmerge/test-utils"];

/** Packages that are libraries: they report through callbacks and errors, never stdout/stderr. */
const LIBRARIES = ["@stmerge/core-tensors", "@stmerge/safe-pickle", "@stmerge/merge-engine", "@stmerge/cache", "@stmerge/civitai-client", "@stmerge/model-library"];
const PRINTING = /\bconsole\.(log|info|warn|error|debug|trace)\s*\(|\bprocess\.(stdout|stderr)\.write\b/;

const isTestFile = (path) => /\.test\.(ts|mts|js|mjs)$/.test(path);

/** Source files under `dir` (recursively), tests included; node_modules, dist and fixtures excluded. */
function listSourceFiles(dir) {
  if (!existsSync(dir)) return [];
  const files = [];
  for (const entry of readdirSync(dir)) {
    if (entry === "node_modules" || entry === "dist" || entry === "fixtures" || entry.startsWith(".")) continue;
    const path = join(dir, entry);
    if (statSync(path).isDirectory()) files.push(...listSourceFiles(path));
    else if (/\.(ts|mts|js|mjs)$/.test(entry)) files.push(path);
  }
  return files;
}

function workspacePackages(root) {
  const dirs = [];
  for (const group of ["packages", "apps", "examples"]) {
    const base = join(root, group);
    if (!existsSync(base)) continue;
    for (const name of readdirSync(base)) {
      const manifest = join(base, name, "package.json");
      if (existsSync(manifest)) dirs.push(join(base, name));
    }
  }
  return dirs;
}

/** Returns a list of human-readable violations; empty when the tree respects the boundaries. */
export function checkBoundaries(root) {
  const violations = [];
  for (const dir of workspacePackages(root)) {
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    const name = manifest.name;
    const allowed = ALLOWED_DEPENDENCIES[name];
    const where = relative(root, dir);
    if (!allowed) {
      violations.push(`${where}: package ${name} has no entry in the boundary table (tools/repo-checks/check-boundaries.mjs)`);
      continue;
    }
    const declared = new Set();
    for (const field of ["dependencies", "devDependencies", "peerDependencies", "optionalDependencies"]) {
      for (const dep of Object.keys(manifest[field] ?? {})) {
        if (!dep.startsWith("@stmerge/") && dep !== "stmerge") continue;
        declared.add(dep);
        if (TEST_ONLY.includes(dep) && field === "devDependencies") continue;
        if (!allowed.includes(dep)) violations.push(`${where}: ${name} must not depend on ${dep} (${field}); allowed: ${allowed.join(", ") || "no sibling"}`);
      }
    }
    // Sources, their tests, test helpers and benchmarks all keep to the package's allowed direction.
    const files = ["src", "test", "bench"].flatMap((sub) => listSourceFiles(join(dir, sub)));
    for (const file of files) {
      const text = readFileSync(file, "utf8");
      const inTestCode = isTestFile(file) || !relative(dir, file).startsWith("src");
      for (const match of text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)["'](@stmerge\/[a-z0-9-]+)/g)) {
        const dep = match[1];
        if (dep === name) continue;
        if (TEST_ONLY.includes(dep)) {
          if (!inTestCode) violations.push(`${relative(root, file)}: ${dep} is for tests only`);
          else if (!declared.has(dep)) violations.push(`${relative(root, file)}: imports ${dep} but ${where}/package.json does not declare it`);
          continue;
        }
        if (!allowed.includes(dep)) violations.push(`${relative(root, file)}: ${name} imports ${dep}, which it must not depend on`);
        else if (!declared.has(dep)) violations.push(`${relative(root, file)}: imports ${dep} but ${where}/package.json does not declare it`);
      }
      if (LIBRARIES.includes(name) && !inTestCode) {
        text.split("\n").forEach((line, i) => {
          if (PRINTING.test(line) && !line.trim().startsWith("//") && !line.trim().startsWith("*")) violations.push(`${relative(root, file)}:${i + 1}: library ${name} prints (${line.trim().slice(0, 60)}); report through callbacks or errors`);
        });
      }
    }
  }
  return violations;
}

const isMain = process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href;
if (isMain) {
  const root = process.argv[2] ?? process.cwd();
  const violations = checkBoundaries(root);
  if (violations.length > 0) {
    process.stderr.write(`Package boundary check failed:\n${violations.map((v) => `  - ${v}`).join("\n")}\n`);
    process.exit(1);
  }
  process.stdout.write(`Package boundaries respected (${workspacePackages(root).length} packages checked)\n`);
}
