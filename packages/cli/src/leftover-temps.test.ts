import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { encodeFromF32, writeSafetensors } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { memoryIo } from "./cli-io.js";
import { formatBytes } from "./format.js";
import { runCli } from "./run-cli.js";
import { TORCH_FIXTURES } from "../test/torch-fixture-dir.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-leftovers-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("temp files left by a crashed earlier run", () => {
  it("convert names them with their size and the rm command, leaves them alone, and still converts", async () => {
    const work = mkdtempSync(join(dir, "convert-"));
    copyFileSync(join(TORCH_FIXTURES, "vae.pt"), join(work, "vae.pt"));
    const leftover = join(work, ".vae.safetensors.0123456789ab.tmp");
    writeFileSync(leftover, new Uint8Array(1500));
    // Not ours: another target's temp and a name that only looks similar.
    writeFileSync(join(work, ".other.safetensors.0123456789ab.tmp"), "x");
    writeFileSync(join(work, ".vae.safetensors.backup.tmp"), "x");
    const io = memoryIo({ cwd: work, env: { STMERGE_NO_BANNER: "1" } });
    expect(await runCli(["convert", "vae.pt", "--no-cache"], io)).toBe(0);
    expect(io.err()).toContain(
      `warning: a temp file (${formatBytes(1500)}) left beside ${join(work, "vae.safetensors")} by an earlier run that did not finish; unless another stmerge is writing it now, remove with: rm '${leftover}'`,
    );
    expect(io.err().match(/temp file/g)).toHaveLength(1);
    expect(existsSync(leftover)).toBe(true);
    expect(existsSync(join(work, "vae.safetensors"))).toBe(true);
  });

  it("extract-vae reports two of them in one warning; none means no warning", async () => {
    const work = mkdtempSync(join(dir, "vae-"));
    await writeSafetensors(join(work, "m.safetensors"), [{ name: "first_stage_model.decoder.conv_in.bias", dtype: "F16", shape: [4], data: encodeFromF32(Float32Array.of(1, 2, 3, 4), "F16") }]);
    const clean = memoryIo({ cwd: work, env: { STMERGE_NO_BANNER: "1" } });
    expect(await runCli(["extract-vae", "m.safetensors", "-o", "first.safetensors"], clean)).toBe(0);
    expect(clean.err()).not.toContain("temp file");
    writeFileSync(join(work, ".m.vae.safetensors.aaaaaaaaaaaa.tmp"), "");
    writeFileSync(join(work, ".m.vae.safetensors.bbbbbbbbbbbb.tmp"), "");
    const io = memoryIo({ cwd: work, env: { STMERGE_NO_BANNER: "1" } });
    expect(await runCli(["extract-vae", "m.safetensors"], io)).toBe(0);
    expect(io.err()).toMatch(/warning: 2 temp files \(.*\) left beside .*m\.vae\.safetensors .*rm '.*\.m\.vae\.safetensors\.aaaaaaaaaaaa\.tmp' '.*\.bbbbbbbbbbbb\.tmp'/);
    expect(readdirSync(work).filter((n) => n.endsWith(".tmp"))).toHaveLength(2);
  });
});
