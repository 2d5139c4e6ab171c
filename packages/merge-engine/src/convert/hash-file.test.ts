import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileIdentityOf } from "@stmerge/core-tensors";
import { hashFileInWorker, hashFileOnThisThread, sha256File, sha256FileInWorker } from "./hash-file.js";

let dir: string;
let path: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-hash-file-"));
  path = join(dir, "model.bin");
  // Past one 8 MiB read, ending mid-chunk.
  writeFileSync(path, randomBytes(8 * 1024 * 1024 + 777));
  utimesSync(path, new Date(), new Date(1_700_000_000_123));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// The reference: node:crypto over the whole file read at once, and the file's stat.
const reference = () => ({ sha256: createHash("sha256").update(readFileSync(path)).digest("hex"), size: statSync(path).size, mtimeMs: statSync(path).mtimeMs });

describe.each([
  ["on this thread", hashFileOnThisThread, sha256File],
  ["on a worker", hashFileInWorker, sha256FileInWorker],
] as const)("hashing a file %s", (_, withStats, digestOnly) => {
  it("gives node:crypto's SHA-256 with the size and mtime of the file it read", async () => {
    const expected = reference();
    expect(await withStats(path)).toEqual(expected);
    expect(await digestOnly(path)).toBe(expected.sha256);
  });

  it("hashes the file the converter opened: same identity passes, another file under the path is refused", async () => {
    const hashOpened = (identity: ReturnType<typeof fileIdentityOf>) => (withStats === hashFileInWorker ? hashFileInWorker(path, undefined, undefined, identity) : hashFileOnThisThread(path, undefined, identity));
    expect(await hashOpened(fileIdentityOf(statSync(path)))).toEqual(reference());
    const other = join(dir, "other.bin");
    writeFileSync(other, "another file");
    await expect(hashOpened(fileIdentityOf(statSync(other)))).rejects.toMatchObject({ code: "CONVERT_SOURCE_CHANGED", message: expect.stringContaining(path) });
  });
});
