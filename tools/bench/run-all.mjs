#!/usr/bin/env node
// `pnpm bench`: runs the "bench" script of every workspace package that has one, in order.
// Benchmarks write large temp files under .bench/ (git-ignored) and print their own tables.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const only = process.argv.slice(2);
const ran = [];
for (const group of ["packages", "apps"]) {
  for (const name of readdirSync(join(root, group))) {
    const manifestPath = join(root, group, name, "package.json");
    if (!existsSync(manifestPath)) continue;
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    if (!manifest.scripts?.bench) continue;
    if (only.length > 0 && !only.includes(name)) continue;
    process.stdout.write(`\n=== ${manifest.name}: ${manifest.scripts.bench}\n`);
    const result = spawnSync("npm", ["run", "--silent", "bench"], { cwd: join(root, group, name), stdio: "inherit", shell: false });
    ran.push(`${manifest.name}: ${result.status === 0 ? "ok" : `failed (${result.status})`}`);
  }
}
process.stdout.write(`\nBenchmarks run:\n${ran.map((r) => `  ${r}`).join("\n") || "  none"}\n`);
