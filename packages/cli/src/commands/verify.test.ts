import { statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";
import { useTorchFixtureDir } from "../../test/torch-fixture-dir.js";

const fixtures = useTorchFixtureDir("stmerge-verify-");
const stage = fixtures.stage;

describe("stmerge verify", () => {
  it("verify fails (exit 1) when the converted file is not the same model", async () => {
    stage("vae.pt", "a.pt");
    stage("upscaler.pth", "b.pth");
    expect(await runCli(["convert", "b.pth"], memoryIo({ cwd: fixtures.dir() }))).toBe(0);
    const v = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", "a.pt", "b.safetensors"], v)).toBe(1);
    expect(v.out()).toMatch(/FAILED: 0 identical.*5 missing, 5 extra/);
    // The closing panel says why and what to run instead of naming only the count.
    expect(v.out()).toMatch(/^╭─ ✖ verification failed ─+╮$/m);
    expect(v.out()).toMatch(/^│ next +stmerge convert a\.pt --overwrite \(the converted file does not hold the original's tensors\) +│$/m);
  });


  it("--verbose lists every tensor; --json carries the counts; a hostile original is refused, not loaded", async () => {
    stage("dataparallel.pth", "dp.pth");
    expect(await runCli(["convert", "dp.pth"], memoryIo({ cwd: fixtures.dir() }))).toBe(0);
    const verbose = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", "dp.pth", "dp.safetensors", "--verbose"], verbose)).toBe(0);
    expect(verbose.out().match(/^ {2}identical/gm)).toHaveLength(5);
    const json = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", "dp.pth", "dp.safetensors", "--json"], json)).toBe(0);
    const doc = JSON.parse(json.out());
    expect(doc).toMatchObject({ ok: true, original: { path: join(fixtures.dir(), "dp.pth"), sizeBytes: statSync(join(fixtures.dir(), "dp.pth")).size, format: "torch-zip" }, converted: { path: join(fixtures.dir(), "dp.safetensors"), sizeBytes: statSync(join(fixtures.dir(), "dp.safetensors")).size, format: "safetensors" }, counts: { identical: 5 } });
    expect(doc.timings.phases.map((p: { phase: string }) => p.phase)).toContain("verify");
    stage("hostile_in_state_dict.ckpt", "evil.ckpt");
    const evil = memoryIo({ cwd: fixtures.dir() });
    expect(await runCli(["verify", "evil.ckpt", "dp.safetensors"], evil)).toBe(1);
    expect(evil.err()).toContain("[PICKLE_FORBIDDEN_GLOBAL]");
  });
});
