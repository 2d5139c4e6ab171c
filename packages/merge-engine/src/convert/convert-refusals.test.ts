import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStmergeError } from "@stmerge/core-tensors";
// The hostile-file generators are safe-pickle's (one owner); convert adds "no output is left".
import { amplifiedSharedViews, hostileContainers } from "@stmerge/test-utils";
import { convertCheckpoint } from "./convert-checkpoint.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "convert-refusals-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function refusalCode(input: string, options: Parameters<typeof convertCheckpoint>[1] = {}): Promise<string> {
  const error = await convertCheckpoint(input, options).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isStmergeError(error), String(error)).toBe(true);
  return (error as { code: string }).code;
}

describe("convert refuses hostile torch files and leaves no output", () => {
  for (const c of hostileContainers().filter((h) => h.open !== "ok")) {
    it(`${c.name}: ${c.open}`, async () => {
      const folder = await mkdtemp(join(dir, `${c.name}-`));
      const input = join(folder, "in.pt");
      await writeFile(input, c.bytes);
      // A safetensors-shaped file goes to the safetensors reader, which refuses it on its own terms.
      expect(await refusalCode(input)).toBe(c.name === "safetensors-shaped-pickle" ? "SAFETENSORS_HEADER_NOT_UTF8" : c.open);
      expect(await readdir(folder)).toEqual(["in.pt"]);
    });
  }

  it("100 tensors viewing one 1 MiB storage: CHECKPOINT_AMPLIFICATION, nothing written", async () => {
    const folder = await mkdtemp(join(dir, "amplified-"));
    const input = join(folder, "in.pt");
    await writeFile(input, amplifiedSharedViews());
    expect(await refusalCode(input)).toBe("CHECKPOINT_AMPLIFICATION");
    expect(await readdir(folder)).toEqual(["in.pt"]);
  });
});
