import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openTorchCheckpoint } from "../src/open-torch-checkpoint.js";
import { PickleBuilder } from "./pickle-builder.js";
import { bigEndianMixedStorages } from "./hostile-containers.js";
import { buildZip } from "./zip-builder.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "legacy-views-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `_rebuild_tensor_v2(persistent_load(pid), offset, (size,), (stride,), False, OrderedDict())` where `pid` pushes the id tuple. */
const tensor = (b: PickleBuilder, pid: (b: PickleBuilder) => PickleBuilder, offset: number, size: number, stride: number): PickleBuilder =>
  pid(b.global("torch._utils", "_rebuild_tensor_v2").mark()).binpersid().int(offset).int(size).tuple(1).int(stride).tuple(1).bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce().tupleFromMark().reduce();

const floats = (...values: number[]): Uint8Array => new Uint8Array(new Float32Array(values).buffer);
const readFloats = (bytes: Uint8Array): number[] => [...new Float32Array(bytes.slice().buffer)];

describe("legacy storage views", () => {
  it("resolves (view_key, offset, size) view metadata against the root storage", async () => {
    const magic = new PickleBuilder().proto(2).bytes(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop();
    const protocol = new PickleBuilder().proto(2).bytes(0x4d, 0xe9, 0x03).stop();
    const sysInfo = new PickleBuilder().proto(2).emptyDict().str("little_endian").bytes(0x88).setitem().stop();
    const root = (p: PickleBuilder) => p.mark().str("storage").global("torch", "FloatStorage").str("140").str("cpu").int(6);
    const object = new PickleBuilder().proto(2).emptyDict().str("a");
    tensor(object, (p) => root(p).str("140v").int(2).int(4).tuple(3).tupleFromMark(), 0, 4, 1).setitem().str("b");
    tensor(object, (p) => root(p).none().tupleFromMark(), 1, 2, 2).setitem().stop();
    const keys = new PickleBuilder().proto(2).emptyList().str("140").append().stop();
    const count = new Uint8Array(8);
    count[0] = 6;
    const file = Buffer.concat([magic, protocol, sysInfo, object, keys].map((b) => b.toBytes()).concat([count, floats(0, 1, 2, 3, 4, 5)]));
    const path = join(dir, "views.pt");
    await writeFile(path, file);
    const checkpoint = await openTorchCheckpoint(path);
    expect(checkpoint.format).toBe("torch-legacy");
    const source = checkpoint.allTensorsSource();
    expect(readFloats(await source.read("a"))).toEqual([2, 3, 4, 5]);
    expect(readFloats(await source.read("b"))).toEqual([1, 3]);
    await checkpoint.close();
  });
});

describe("byteorder", () => {
  it("byte-swaps storages of a zip checkpoint whose byteorder record says big", async () => {
    const pickle = tensor(new PickleBuilder().proto(2).emptyDict().str("w"), (p) => p.mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(3).tupleFromMark(), 0, 3, 1).setitem().stop().toBytes();
    const big = floats(1.5, -2, 1024).slice();
    for (let i = 0; i < big.length; i += 4) big.subarray(i, i + 4).reverse();
    const path = join(dir, "big.pt");
    await writeFile(path, buildZip([{ name: "x/data.pkl", data: pickle }, { name: "x/byteorder", data: Buffer.from("big") }, { name: "x/data/0", data: big }]));
    const checkpoint = await openTorchCheckpoint(path);
    expect(readFloats(await checkpoint.allTensorsSource().read("w"))).toEqual([1.5, -2, 1024]);
    await checkpoint.close();
  });

  it("swaps by the storage's type as torch does: typed storages swapped, untyped (v3) bytes kept", async () => {
    const path = join(dir, "big-mixed.pt");
    await writeFile(path, bigEndianMixedStorages());
    const checkpoint = await openTorchCheckpoint(path);
    try {
      const source = checkpoint.allTensorsSource();
      expect([...new Int16Array((await source.read("w")).slice().buffer)]).toEqual([0x0201, 0x0403]);
      expect(readFloats(await source.read("f"))).toEqual([1.5, -2]);
    } finally {
      await checkpoint.close();
    }
  });
});
