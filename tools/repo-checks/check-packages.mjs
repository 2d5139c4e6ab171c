#!/usr/bin/env node
// Checks that every publishable package is publishable as it is: publint (package.json against
// the files it ships), arethetypeswrong (types resolve for ESM consumers), and a scratch project
// that installs the packed tarballs and imports each one. Needs `pnpm build:packages` first.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const bin = (name) => join(root, "node_modules", ".bin", name);

function publishable() {
  const dirs = [];
  for (const name of readdirSync(join(root, "packages")).sort()) {
    const manifestPath = join(root, "packages", name, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    if (!manifest.private) dirs.push({ dir: join(root, "packages", name), name: manifest.name });
  }
  return dirs;
}

function run(command, args, cwd) {
  return new Promise((resolve) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" } });
    let output = "";
    child.stdout.on("data", (d) => (output += d));
    child.stderr.on("data", (d) => (output += d));
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Runs the tasks two at a time (the CI machine has two cores). */
async function inParallel(tasks, width = 2) {
  const results = [];
  let next = 0;
  async function lane() {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]();
    }
  }
  await Promise.all(Array.from({ length: width }, lane));
  return results;
}

const packages = publishable();
const failures = [];
const lintResults = await inParallel(
  packages.flatMap(({ dir, name }) => [
    async () => ({ name, check: "publint", ...(await run(bin("publint"), ["--strict"], dir)) }),
    async () => ({ name, check: "attw", ...(await run(bin("attw"), ["--pack", ".", "--profile", "esm-only", "--format", "ascii"], dir)) }),
  ]),
);
for (const r of lintResults) {
  if (r.code !== 0) failures.push(`${r.name}: ${r.check} failed\n${r.output.trim()}`);
}

// Pack every package and install the tarballs together into a scratch project, as a user would.
const scratch = mkdtempSync(join(tmpdir(), "stmerge-pack-check-"));
try {
  const tarballs = {};
  for (const { dir, name } of packages) {
    const out = execFileSync(process.execPath, [join(root, "node_modules", "pnpm", "bin", "pnpm.cjs"), "pack", "--pack-destination", scratch], { cwd: dir, encoding: "utf8" });
    const file = out.trim().split("\n").pop().trim();
    tarballs[name] = file.startsWith("/") ? file : join(scratch, file);
  }
  const project = join(scratch, "project");
  execFileSync("mkdir", ["-p", project]);
  // Sibling dependencies resolve to the packed tarballs, not the registry.
  const overrides = Object.fromEntries(Object.entries(tarballs).map(([name, file]) => [name, `file:${file}`]));
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "scratch", private: true, type: "module", dependencies: overrides, overrides }, null, 2));
  const install = await run("npm", ["install", "--no-audit", "--no-fund", "--omit=optional", "--loglevel=error"], project);
  if (install.code !== 0) failures.push(`npm install of the packed packages failed\n${install.output.trim()}`);
  else {
    for (const { name } of packages) {
      const imported = await run(process.execPath, ["--input-type=module", "-e", `const m = await import(${JSON.stringify(name)}); if (Object.keys(m).length === 0) { console.error("no exports"); process.exit(1); }`], project);
      if (imported.code !== 0) failures.push(`${name}: importing the installed package failed\n${imported.output.trim()}`);
    }
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

if (failures.length > 0) {
  process.stderr.write(`Package check failed:\n${failures.join("\n\n")}\n`);
  process.exit(1);
}
process.stdout.write(`Package check: ${packages.length} packages pass publint, arethetypeswrong and install-and-import from their tarballs.\n`);
