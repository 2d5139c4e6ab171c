import { createHash } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSafetensorsWriter } from "@stmerge/core-tensors";
import { afterAll, describe, expect, it } from "vitest";
import { hashFile } from "./hash-file.js";
import { createHashingTap } from "./hash-while-writing.js";

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function writeWithTap(name: string, order: "forward" | "reverse", threads: "auto" | number = "auto") {
  const dir = await mkdtemp(join(tmpdir(), "stmerge-hashtap-"));
  dirs.push(dir);
  const path = join(dir, name);
  const tap = createHashingTap({ threads });
  const writer = createSafetensorsWriter(path, { tap });
  // 2.4 MB: AutoV1 needs at least 2 MiB.
  const tensors = Array.from({ length: 3 }, (_, k) => ({ name: `t${k}`, data: Uint8Array.from({ length: 800_000 }, (_, i) => (i * (k + 7)) & 0xff) }));
  await writer.begin(tensors.map((t) => ({ name: t.name, dtype: "U8" as const, shape: [t.data.byteLength], byteLength: t.data.byteLength })), { "modelspec.title": "tap" });
  for (const t of order === "forward" ? tensors : [...tensors].reverse()) await writer.write(t.name, t.data);
  await writer.commit();
  return { path, hashes: await tap.result() };
}

describe("hashes computed while writing", () => {
  it("equal the hashes of the file read back (all six algorithms)", async () => {
    const { path, hashes } = await writeWithTap("forward.safetensors", "forward");
    const read = await hashFile(path, { threads: 1 });
    expect(hashes).toEqual(read.hashes);
    expect(hashes?.autov1).toMatch(/^[0-9A-F]{8}$/);
    expect(hashes?.sha256).toBe(createHash("sha256").update(await readFile(path)).digest("hex"));
  });

  it("hold out-of-order tensors until their turn and still match", async () => {
    const { path, hashes } = await writeWithTap("reverse.safetensors", "reverse");
    expect(hashes).toEqual((await hashFile(path, { threads: 1 })).hashes);
  });

  it("match on worker threads too (the path large outputs take)", async () => {
    const { path, hashes } = await writeWithTap("lanes.safetensors", "reverse", 2);
    expect(hashes).toEqual((await hashFile(path, { threads: 1 })).hashes);
  });

  it("give no result when they did not see every byte", async () => {
    const tap = createHashingTap({ algorithms: ["sha256"] });
    await tap.start!({ size: 10, head: new Uint8Array(8) });
    await tap.bytes(new Uint8Array(4), 0);
    expect(await tap.result()).toBeUndefined();
  });
});
