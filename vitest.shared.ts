import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// Tests run with a throwaway HOME so nothing (the metadata cache, a .env) ever touches the
// developer's real files.
// Every project's config imports this module; the first one creates the home, the rest reuse it.
const testHome = process.env.STMERGE_TEST_HOME ?? mkdtempSync(join(tmpdir(), "stmerge-test-home-"));
// Temp folders of tests (and of the child processes they start) go under it too, and all of it is
// removed when the run ends, so a test that forgets its own clean-up leaves nothing in /tmp.
const testTmp = join(testHome, "tmp");
if (!process.env.STMERGE_TEST_HOME) {
  process.env.STMERGE_TEST_HOME = testHome;
  mkdirSync(testTmp);
  process.once("exit", () => rmSync(testHome, { recursive: true, force: true }));
}

// `pnpm test:oracle` sets STMERGE_ORACLE_PYTHON and runs only the live cross-checks in which
// Python reads our outputs; the main suite never needs Python and leaves them out.
const oracle = Boolean(process.env.STMERGE_ORACLE_PYTHON);
const unit = ["src/**/*.test.ts", "test/**/*.test.ts"];
const oracleTests = ["src/**/*.oracle.test.ts", "test/**/*.oracle.test.ts"];

// Tests import sibling packages through the "@stmerge/source" export condition, so they run
// against TypeScript sources without a build step in between. A scoped name, so no outside
// tool or bundler of our npm users ever resolves to sources that are not published.
export default defineConfig({
  resolve: { conditions: ["@stmerge/source", "module", "node", "import", "default"] },
  ssr: { resolve: { conditions: ["@stmerge/source", "module", "node", "import", "default"], externalConditions: ["@stmerge/source"] } },
  test: {
    include: oracle ? oracleTests : unit,
    // *.slow.test.ts run in the root config's "slow" project instead.
    exclude: oracle ? ["**/node_modules/**"] : ["**/node_modules/**", "**/*.oracle.test.ts", "**/*.slow.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    passWithNoTests: false,
    env: { HOME: testHome, TMPDIR: testTmp, STMERGE_CACHE: join(testHome, ".model_merger", "model_cache.json"), CIVITAI_API_KEY: "", CIVITAI_BASE_URL: "http://127.0.0.1:9" },
  },
});
