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
    reporters,
    ...(jsonOut ? { outputFile: { json: jsonOut } } : {}),
  },
});
