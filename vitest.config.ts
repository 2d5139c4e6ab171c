import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";
import shared from "./vitest.shared.js";

const reporters: string[] = ["default"];
const jsonOut = process.env.STMERGE_TEST_JSON;
if (jsonOut) reporters.push("json");

// Files named *.slow.test.ts (multi-GiB sparse files, compiles, tmux sessions, kill-at-every-step
// loops: tens of seconds each on a loaded machine) form the project "slow". `pnpm test` runs every
// project but this one (`--project '!slow'`), `pnpm test:slow` only this one; CI (.ci/run) runs
// both. A bare `vitest run` still runs everything.
const slow = { ...shared, test: { ...shared.test, name: "slow", include: ["{packages,apps,tools,examples}/*/{src,test}/**/*.slow.test.ts"], exclude: ["**/node_modules/**"] } };

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "tools/*/vitest.config.ts", "examples/*/vitest.config.ts", ...(process.env.STMERGE_ORACLE_PYTHON ? [] : [slow])],
    // Vitest's default (cores − 1) runs one file at a time on a 2-core machine, while most files
    // spend their time waiting on child processes, worker threads and the disk: two at a time
    // took the main suite from 235–265 s to 151–192 s there (three: 174 s). `test:slow` keeps its files one at a time.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    reporters,
    ...(jsonOut ? { outputFile: { json: jsonOut } } : {}),
  },
});
