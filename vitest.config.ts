import { defineConfig } from "vitest/config";
import shared from "./vitest.shared.js";

const reporters: string[] = ["default"];
const jsonOut = process.env.STMERGE_TEST_JSON;
if (jsonOut) reporters.push("json");

// Files named *.slow.test.ts (multi-GiB sparse files, compiles: tens of seconds each on a loaded
// machine) form the project "slow". `vitest run` (so `pnpm test` and CI) runs them with the rest;
// `npx vitest run --project '!slow'` is the quick loop without them.
const slow = { ...shared, test: { ...shared.test, name: "slow", include: ["{packages,apps,tools,examples}/*/{src,test}/**/*.slow.test.ts"], exclude: ["**/node_modules/**"] } };

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "tools/*/vitest.config.ts", "examples/*/vitest.config.ts", ...(process.env.STMERGE_ORACLE_PYTHON ? [] : [slow])],
    reporters,
    ...(jsonOut ? { outputFile: { json: jsonOut } } : {}),
  },
});
