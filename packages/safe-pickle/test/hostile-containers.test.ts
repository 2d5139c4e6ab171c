import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCountingReads } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isStmergeError } from "@stmerge/core-tensors";
import { auditCheckpoint } from "../src/audit-checkpoint.js";
import { isTarHeader } from "../src/detect-container.js";
import { openTorchCheckpoint } from "../src/open-torch-checkpoint.js";
import { MAX_ZIP_ENTRIES, readZipDirectory } from "../src/zip-reader.js";
import { cleanPickle, hostileContainers, payloadPickle, tarMember } from "./hostile-containers.js";
import { buildZip } from "./zip-builder.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "safe-pickle-containers-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function openOutcome(path: string): Promise<string> {
  try {
    const checkpoint = await openTorchCheckpoint(path);
    await checkpoint.close();
    return "ok";
  } catch (error) {
    expect(isStmergeError(error), String(error)).toBe(true);
    return (error as { code: string }).code;
  }
}

describe("hostile containers: open and audit see what torch would read", () => {
  for (const c of hostileContainers()) {
    it(`${c.name}: open → ${c.open}, audit → ${c.audit}`, async () => {
      const path = join(dir, `${c.name}.pt`);
      await writeFile(path, c.bytes);
      expect(await openOutcome(path)).toBe(c.open);
      const report = await auditCheckpoint(path);
      expect(report.status).toBe(c.audit);
      if (c.open !== "ok" && c.open !== "PICKLE_FORBIDDEN_GLOBAL") expect(report.error?.code).toBe(c.open);
      if (c.open === "PICKLE_FORBIDDEN_GLOBAL") expect(report.globals[0]).toMatchObject({ module: "builtins", name: "print" });
    });
  }

  it("a tensor in a deflated data.pkl reads back; a deflated storage is refused clearly", async () => {
    const path = join(dir, "deflated-clean.pt");
    await writeFile(path, hostileContainers().find((c) => c.name === "zip-deflated-clean")!.bytes);
    const checkpoint = await openTorchCheckpoint(path);
    expect([...new Float32Array((await checkpoint.allTensorsSource().read("w")).slice().buffer)]).toEqual([1, 2, 3, 4]);
    await checkpoint.close();
    const storage = join(dir, "deflated-storage.pt");
    await writeFile(storage, buildZip([{ name: "archive/data.pkl", data: cleanPickle() }, { name: "archive/data/0", data: new Uint8Array(16), deflate: true }]));
    await expect(openTorchCheckpoint(storage)).rejects.toMatchObject({ code: "ZIP_COMPRESSED_ENTRY", message: expect.stringContaining('record "archive/data/0" is compressed') });
  });

  it("ambiguity messages name the entries", async () => {
    const path = join(dir, "twins.pt");
    await writeFile(path, hostileContainers().find((c) => c.name === "zip-case-twins")!.bytes);
    await expect(openTorchCheckpoint(path)).rejects.toThrow(/ambiguous zip archive: entries "archive\/data\.pkl" and "archive\/Data\.pkl" differ only by case/);
  });
});

describe("tar detection by header checksum, as Python's tarfile does", () => {
  it("a v7 header without the ustar magic is a tar; one flipped byte is not", () => {
    const member = tarMember(new Uint8Array(Buffer.from("storages")), payloadPickle());
    expect(isTarHeader(member)).toBe(true);
    const flipped = member.slice();
    flipped[3]! ^= 1;
    expect(isTarHeader(flipped)).toBe(false);
    expect(isTarHeader(new Uint8Array(512))).toBe(false);
    expect(isTarHeader(member.subarray(0, 511))).toBe(false);
  });
});

describe("zip entry counts", () => {
  it("70,000 entries (over the classic 65,535) are indexed from one read of the central directory (no read per entry)", async () => {
    const records = Array.from({ length: 70_000 }, (_, i) => ({ name: `a/data/${i}`, data: new Uint8Array(0) }));
    const path = join(dir, "many.zip");
    const bytes = buildZip(records, { zip64: true });
    await writeFile(path, bytes);
    const { handle, reads, close } = await openCountingReads(path);
    try {
      const directory = await readZipDirectory(handle, bytes.length, path);
      expect(directory.names).toHaveLength(70_000);
      expect(directory.find("A/DATA/69999")?.name).toBe("a/data/69999");
      expect(reads.length).toBeLessThanOrEqual(4); // tail, ZIP64 locator, ZIP64 end record, central directory
    } finally {
      await close();
    }
  });

  it("an end record declaring a million entries is refused before the directory is read", async () => {
    // Counts over 65,535 live in the ZIP64 end record.
    const z64 = buildZip([{ name: "a/data.pkl", data: new Uint8Array([0x4e, 0x2e]) }], { zip64: true });
    const zv = new DataView(z64.buffer);
    const z64At = z64.length - 22 - 20 - 56;
    zv.setBigUint64(z64At + 24, 1_000_000n, true);
    zv.setBigUint64(z64At + 32, 1_000_000n, true);
    const path = join(dir, "million.zip");
    await writeFile(path, z64);
    const { handle, reads, close } = await openCountingReads(path);
    try {
      await expect(readZipDirectory(handle, z64.length, path)).rejects.toMatchObject({ code: "CHECKPOINT_LIMIT", message: expect.stringContaining(`1000000 entries, over the limit of ${MAX_ZIP_ENTRIES}`) });
      expect(reads.reduce((a, b) => a + b, 0)).toBeLessThan(z64.length + 100);
    } finally {
      await close();
    }
  });
});
