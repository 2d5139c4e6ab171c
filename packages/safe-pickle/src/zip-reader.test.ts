import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildZip } from "../test/zip-builder.js";
import { readZipDirectory, readZipEntry } from "./zip-reader.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "zip-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function directory(bytes: Uint8Array) {
  const path = join(dir, `${Math.random()}.zip`);
  await writeFile(path, bytes);
  const handle = await open(path, "r");
  try {
    const d = await readZipDirectory(handle, bytes.length, path);
    const contents = new Map<string, string>();
    for (const [name, entry] of d.entries) contents.set(name, Buffer.from(await readZipEntry(handle, entry, bytes.length, path, 1 << 20)).toString());
    return { names: d.names, contents };
  } finally {
    await handle.close();
  }
}

describe("readZipDirectory", () => {
  const records = [
    { name: "a/data.pkl", data: Buffer.from("pickle") },
    { name: "a/data/0", data: Buffer.from("storage zero") },
  ];
  it("reads classic and ZIP64 directories alike, ignoring CRCs", async () => {
    for (const options of [{}, { zip64: true }, { badCrc: true }]) {
      const { names, contents } = await directory(buildZip(records, options));
      expect(names).toEqual(["a/data.pkl", "a/data/0"]);
      expect(contents.get("a/data/0")).toBe("storage zero");
    }
  });
  it("finds the end record behind a trailing comment-free tail and rejects damage", async () => {
    const zip = buildZip(records);
    await expect(directory(zip.subarray(0, zip.length - 1))).rejects.toMatchObject({ code: "ZIP_MALFORMED" });
    const broken = zip.slice();
    broken[zip.length - 22 + 16] = 0xff; // central directory offset points outside the file
    await expect(directory(broken)).rejects.toMatchObject({ code: "ZIP_MALFORMED" });
    await expect(directory(new Uint8Array(10))).rejects.toMatchObject({ code: "ZIP_MALFORMED" });
  });
  it("refuses duplicate entry names", async () => {
    await expect(directory(buildZip([records[0]!, records[0]!]))).rejects.toThrow(/appears twice/);
  });
});
