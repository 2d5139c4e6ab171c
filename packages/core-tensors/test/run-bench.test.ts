import { spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bundleEntry } from "@stmerge/test-utils";
import { describe, expect, it } from "vitest";

const here = dirname(fileURLToPath(import.meta.url));

// `pnpm bench` is not run by CI (it takes minutes), so a kernel whose signature changed under it
// went unnoticed: dareMergeEncoded took counter-based draws' seeds from 2026-12-04 on, and the
// kernel bench crashed on its old call until 2026-12-05. This runs the bench's kernel rows on a
// few elements, from the sources, so such a change fails here.
describe("core-tensors' kernel bench", () => {
  it("calls every kernel as the backend defines it (all rows, each set, one and two threads)", async () => {
    const bench = await bundleEntry(join(here, "../bench/run-bench.mjs"), { outDir: join(here, "../.tmp"), name: "run-bench" });
    const run = spawnSync(process.execPath, [bench], { env: { ...process.env, STMERGE_BENCH_ONLY: "kernels", STMERGE_BENCH_ELEMENTS: "65536" }, encoding: "utf8", timeout: 120_000 });
    // A kernel's error message may quote its arguments whole (megabytes): the first 2000 characters name it.
    expect(run.status, run.stderr.slice(0, 2000)).toBe(0);
    expect(run.stderr.slice(0, 2000)).toBe("");
    // 20 kernels × 3 kernel sets × (1 and 2 threads), then the cut's two ops × 2 sets.
    expect(run.stdout.match(/ M elem\/s /g)).toHaveLength(120);
    expect(run.stdout.match(/ M entries\/s /g)).toHaveLength(4);
  }, 150_000);
});
