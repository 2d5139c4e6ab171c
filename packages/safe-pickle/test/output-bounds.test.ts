import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MAX_OUTPUT_RATIO, MIN_OUTPUT_ALLOWANCE, openTorchCheckpoint } from "../src/open-torch-checkpoint.js";
import { amplifiedSharedViews, cleanPickle } from "./hostile-containers.js";
import { buildZip } from "./zip-builder.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "safe-pickle-output-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("output amplification", () => {
  it("100 tensors viewing one 1 MiB storage (100 MiB of output from a 1 MiB file) are refused unless allowed", async () => {
    const numel = 1 << 18;
    const path = join(dir, "shared.pt");
    await writeFile(path, amplifiedSharedViews());
    const checkpoint = await openTorchCheckpoint(path);
    try {
      expect(checkpoint.tensors).toHaveLength(100);
      expect(() => checkpoint.allTensorsSource()).toThrow(
        expect.objectContaining({ code: "CHECKPOINT_AMPLIFICATION", message: expect.stringMatching(/add up to 104857600 bytes from a \d+-byte file \(\d+\.\dx, over the 4x limit\)/) }),
      );
      // The same file with a few of the views stays within the allowance.
      expect(checkpoint.createSource(checkpoint.tensors.slice(0, 4).map((t) => ({ name: String(t.path[0]), tensor: t.tensor }))).descriptors).toHaveLength(4);
    } finally {
      await checkpoint.close();
    }
    const allowed = await openTorchCheckpoint(path, { allowAmplification: true });
    try {
      expect(allowed.allTensorsSource().descriptors.reduce((a, d) => a + d.byteLength, 0)).toBe(100 * numel * 4);
    } finally {
      await allowed.close();
    }
    expect(MAX_OUTPUT_RATIO).toBe(4);
    expect(MIN_OUTPUT_ALLOWANCE).toBe(64 << 20);
  });
});

describe("tensor names", () => {
  it("a lone surrogate from a protocol-0 UNICODE key is refused with a clear error on read", async () => {
    // cleanPickle() starts PROTO 2, EMPTY_DICT, SHORT_BINUNICODE "w": swap the key for UNICODE "w\ud800" (raw-unicode-escape).
    const clean = cleanPickle();
    expect([...clean.subarray(0, 6)]).toEqual([0x80, 2, 0x7d, 0x8c, 1, 0x77]);
    const key = new Uint8Array(Buffer.from("Vw\\ud800\n", "latin1"));
    const pickle = new Uint8Array(Buffer.concat([clean.subarray(0, 3), key, clean.subarray(6)]));
    const path = join(dir, "surrogate.pt");
    await writeFile(path, buildZip([{ name: "archive/data.pkl", data: pickle }, { name: "archive/data/0", data: new Uint8Array(16) }]));
    const checkpoint = await openTorchCheckpoint(path);
    try {
      expect(checkpoint.tensors[0]!.path).toEqual(["w\ud800"]);
      expect(() => checkpoint.allTensorsSource()).toThrow(
        expect.objectContaining({ code: "TENSOR_NAME_INVALID", message: `${path}: tensor name "w\\ud800" holds a lone surrogate, which UTF-8 cannot encode (refused)` }),
      );
    } finally {
      await checkpoint.close();
    }
  });
});
