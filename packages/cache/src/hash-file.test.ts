import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBLAKE3 } from "hash-wasm";
import { pattern } from "../test/pattern.js";
import { hashFile } from "./hash-file.js";
import type { ProgressEvent } from "@stmerge/core-tensors";

const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");

interface Expected {
  size: number;
  sha256: string;
  autov1: string | null;
  autov2: string;
  autov3: string | null;
  crc32: string;
}
const expected = JSON.parse(await readFile(join(FIXTURES, "hashes.json"), "utf8")) as {
  committed: Record<string, Expected>;
  generated: Record<string, Expected & { markers?: [number, string][] }>;
};

async function wasmBlake3(bytes: Uint8Array): Promise<string> {
  const h = await createBLAKE3();
  h.init();
  h.update(bytes);
  return h.digest("hex");
}

function pythonView(e: Expected) {
  return { sha256: e.sha256, autov1: e.autov1, autov2: e.autov2, autov3: e.autov3, crc32: e.crc32 };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-hash-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("hashFile against Python hashlib/zlib on committed fixtures", () => {
  for (const [name, e] of Object.entries(expected.committed)) {
    it(`${name} (${e.size} bytes)`, async () => {
      const path = join(FIXTURES, name);
      const result = await hashFile(path);
      const { blake3, ...rest } = result.hashes;
      expect(rest).toEqual(pythonView(e));
      expect(result.size).toBe(e.size);
      expect(blake3).toBe(await wasmBlake3(await readFile(path)));
    });
  }

  it("CivitAI's scanner test vector for 'hello world'", async () => {
    const { hashes } = await hashFile(join(FIXTURES, "hello.txt"));
    expect(hashes.sha256?.toUpperCase()).toBe("B94D27B9934D3E08A52E52D7DA7DABFAC484EFE37A5380EE9088F7ACE2EFCDE9");
    expect(hashes.autov2).toBe("B94D27B993");
    expect(hashes.autov1).toBeNull();
    expect(hashes.crc32).toBe("85114A0D");
    expect(hashes.blake3?.toUpperCase()).toBe("D74981EFA70A0C880B8D8C1985D075DBCBF679B99A5F9914E5AAF96B831A9E24");
  });

  it("AutoV3 ignores safetensors metadata while SHA-256 does not", async () => {
    const a = await hashFile(join(FIXTURES, "tiny.safetensors"), { algorithms: ["sha256", "autov3"] });
    const b = await hashFile(join(FIXTURES, "tiny-other-meta.safetensors"), { algorithms: ["sha256", "autov3"] });
    expect(a.hashes.autov3).toBe(b.hashes.autov3);
    expect(a.hashes.sha256).not.toBe(b.hashes.sha256);
    expect(Object.keys(a.hashes).sort()).toEqual(["autov3", "sha256"]);
  });
});

describe("hashFile on generated files around the 2 MiB AutoV1 rule", () => {
  for (const key of ["pattern-1572864", "pattern-3145745"]) {
    const e = expected.generated[key]!;
    for (const threads of [1, 2] as const) {
      it(`${key} with ${threads} thread(s), 256 KiB reads`, async () => {
        const path = join(dir, `${key}.bin`);
        const bytes = pattern(0, e.size);
        await writeFile(path, bytes);
        const events: ProgressEvent[] = [];
        const result = await hashFile(path, { threads, chunkSize: 256 * 1024, onProgress: (ev) => events.push(ev) });
        const { blake3, ...rest } = result.hashes;
        expect(rest).toEqual(pythonView(e));
        expect(blake3).toBe(await wasmBlake3(bytes));
        expect(events.length).toBeGreaterThan(2);
        expect(events.at(-1)).toMatchObject({ phase: "hash", bytesDone: e.size, bytesTotal: e.size });
        for (let i = 1; i < events.length; i++) expect(events[i]!.bytesDone).toBeGreaterThan(events[i - 1]!.bytesDone);
      });
    }
  }

  it("AutoV3 of a 3 MiB safetensors file (Python-written header + data)", async () => {
    const e = expected.generated["pattern-st"]!;
    const header = await readFile(join(FIXTURES, "pattern.header"));
    const path = join(dir, "pattern.safetensors");
    await writeFile(path, Buffer.concat([header, pattern(0, 3 * 1024 * 1024)]));
    const { hashes } = await hashFile(path, { algorithms: ["sha256", "autov1", "autov2", "autov3", "crc32"], threads: 2, chunkSize: 1 << 20 });
    expect(hashes).toEqual(pythonView(e));
  });

  it("only AutoV1 reads only its 64 KiB window", async () => {
    const e = expected.generated["pattern-3145745"]!;
    const path = join(dir, "window.bin");
    await writeFile(path, pattern(0, e.size));
    const result = await hashFile(path, { algorithms: ["autov1"] });
    expect(result.hashes).toEqual({ autov1: e.autov1 });
    expect(result.bytesRead).toBe(0x10000);
  });

  it("the WebAssembly BLAKE3 fallback gives the native result", async () => {
    const path = join(dir, "fallback.bin");
    await writeFile(path, pattern(7, 300_000));
    const native = await hashFile(path, { algorithms: ["blake3"], blake3: "auto" });
    const wasm = await hashFile(path, { algorithms: ["blake3"], blake3: "wasm" });
    expect(wasm.hashes.blake3).toBe(native.hashes.blake3);
  });
});

// The 4 GiB sparse-file case is in hash-file.slow.test.ts (the "slow" project).

describe("hashFile errors", () => {
  it("a missing file is FILE_NOT_FOUND naming the file", async () => {
    const path = join(dir, "nope.bin");
    await expect(hashFile(path)).rejects.toMatchObject({ code: "FILE_NOT_FOUND", file: path });
  });
  it("a directory is refused", async () => {
    await expect(hashFile(dir)).rejects.toMatchObject({ code: "FILE_UNREADABLE" });
  });
  it("an aborted signal stops hashing", async () => {
    const path = join(dir, "abort.bin");
    await writeFile(path, pattern(0, 100_000));
    const controller = new AbortController();
    controller.abort();
    await expect(hashFile(path, { signal: controller.signal })).rejects.toMatchObject({ code: "HASH_ABORTED" });
  });
});
