import { createHash } from "node:crypto";
import * as zlib from "node:zlib";
import { describe, expect, it } from "vitest";
import { EXPECTED, fixture } from "../test/fixture-paths.js";
import { openTorchCheckpoint } from "./open-torch-checkpoint.js";
import { PyDict, PyRecord } from "./py-values.js";

const sha256 = (bytes: Uint8Array): string => createHash("sha256").update(bytes).digest("hex");

describe("openTorchCheckpoint against torch.load", () => {
  for (const [name, expected] of Object.entries(EXPECTED)) {
    it(`${name}: every tensor matches torch.load byte for byte`, async () => {
      const checkpoint = await openTorchCheckpoint(fixture(name));
      try {
        expect(checkpoint.format).toBe(expected.format);
        const source = checkpoint.allTensorsSource();
        const names = source.descriptors.map((d) => d.name).sort();
        expect(names).toEqual(Object.keys(expected.tensors).sort());
        for (const d of source.descriptors) {
          const want = expected.tensors[d.name]!;
          expect({ name: d.name, dtype: d.dtype, shape: d.shape }).toEqual({ name: d.name, dtype: want.dtype, shape: want.shape });
          expect(sha256(await source.read(d.name)), d.name).toBe(want.sha256);
        }
      } finally {
        await checkpoint.close();
      }
    });
  }

  it("recordedCrc32Of: the zip's CRC-32 of whole contiguous storages equals zlib's CRC-32 of the bytes read; views and legacy files have none", async () => {
    const crc32 = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
    if (!crc32) return;
    for (const [name, recorded] of [["sd_lightning.ckpt", 13], ["views_zip.pt", undefined], ["sd_lightning_legacy.ckpt", 0]] as const) {
      const checkpoint = await openTorchCheckpoint(fixture(name));
      try {
        let count = 0;
        for (const { tensor } of checkpoint.tensors) {
          const crc = checkpoint.recordedCrc32Of(tensor);
          if (crc === undefined) continue;
          count++;
          expect(crc).toBe(crc32(await checkpoint.readTensor(tensor)));
        }
        if (recorded === undefined) {
          expect(count, name).toBeGreaterThan(0);
          expect(count, name).toBeLessThan(checkpoint.tensors.length);
        } else expect(count, name).toBe(recorded);
      } finally {
        await checkpoint.close();
      }
    }
  });

  it("keeps training extras as inert data: lightning callback record, numpy scalars", async () => {
    const checkpoint = await openTorchCheckpoint(fixture("sd_lightning.ckpt"));
    try {
      const root = checkpoint.root as PyDict;
      expect(root).toBeInstanceOf(PyDict);
      expect(root.get("epoch")).toBe(3);
      const callbacks = root.get("callbacks") as PyDict;
      const [callback] = [...callbacks.entries.values()];
      expect(callback).toBeInstanceOf(PyRecord);
      expect((callback as PyRecord).className).toBe("pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint");
      expect(((callback as PyRecord).state as PyDict).get("monitor")).toBe("val/loss");
      expect((root.get("global_step") as PyRecord).className).toBe("numpy.scalar");
    } finally {
      await checkpoint.close();
    }
  });

  it("reads byte ranges of contiguous and strided tensors", async () => {
    const checkpoint = await openTorchCheckpoint(fixture("views_zip.pt"));
    try {
      const source = checkpoint.allTensorsSource();
      for (const name of ["f32", "transposed", "sliced", "shared_b"]) {
        const all = await source.read(name);
        const part = await source.readRange(name, 4, all.length - 4);
        expect(part).toEqual(all.subarray(4, all.length - 4));
      }
    } finally {
      await checkpoint.close();
    }
  });
});
