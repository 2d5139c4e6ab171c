import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashFile } from "./hash-file.js";

// Live cross-check (pnpm test:oracle): Python's hashlib and zlib hash random files whose sizes sit
// on and around our read-chunk and AutoV1 boundaries, and must agree with hashFile inline and on lanes.
const python = process.env.STMERGE_ORACLE_PYTHON;

const PY = String.raw`
import hashlib, json, struct, sys, zlib
out = {}
for path in sys.argv[1:]:
    data = open(path, "rb").read()
    sha = hashlib.sha256(data).hexdigest()
    v1 = hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8].upper() if len(data) >= 0x200000 else None
    v3 = None
    if len(data) >= 8:
        n = struct.unpack("<Q", data[:8])[0]
        start = 8 if n >= 16 * 1024 * 1024 else min(8 + n, len(data))
        v3 = hashlib.sha256(data[start:]).hexdigest()[:12].upper()
    crc = struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF).hex().upper()
    out[path] = {"sha256": sha, "autov1": v1, "autov2": sha[:10].upper(), "autov3": v3, "crc32": crc}
print(json.dumps(out))
`;

describe.runIf(python)("hashFile vs Python hashlib/zlib (live)", () => {
  let dir: string;
  const files: string[] = [];
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "stmerge-hash-oracle-"));
    const chunk = 256 * 1024;
    const sizes = [1, 8, 9, chunk - 1, chunk, chunk + 1, 0x110000, 0x200000 - 1, 0x200000, 0x200000 + 3 * chunk + 7];
    for (const size of sizes) {
      const bytes = randomBytes(size);
      // Half the files get a small plausible safetensors header length.
      if (size >= 8 && size % 2 === 0) bytes.writeBigUInt64LE(BigInt(Math.min(size - 8, 1000)), 0);
      const path = join(dir, `r${size}.bin`);
      await writeFile(path, bytes);
      files.push(path);
    }
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("every file, inline and on two worker lanes, with reads smaller than the file", async () => {
    const run = spawnSync(python!, ["-c", PY, ...files], { encoding: "utf8" });
    expect(run.status, run.stderr).toBe(0);
    const expected = JSON.parse(run.stdout) as Record<string, Record<string, string | null>>;
    for (const path of files) {
      for (const threads of [1, 2]) {
        const { hashes } = await hashFile(path, { algorithms: ["sha256", "autov1", "autov2", "autov3", "crc32"], threads, chunkSize: 256 * 1024 });
        expect(hashes, `${path} threads=${threads}`).toEqual(expected[path]);
      }
    }
  });
});
