import { defineConfig } from "vitest/config";

const reporters: string[] = ["default"];
const jsonOut = process.env.STMERGE_TEST_JSON;
if (jsonOut) reporters.push("json");

export default defineConfig({
  test: {
    projects: ["packages/*/vitest.config.ts", "apps/*/vitest.config.ts", "tools/*/vitest.config.ts", "examples/*/vitest.config.ts"],
    reporters,
    ...(jsonOut ? { outputFile: { json: jsonOut } } : {}),
  },
});
