import { existsSync } from "node:fs";
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isStmergeError } from "@stmerge/core-tensors";
import { ForbiddenGlobalError } from "../src/pickle-errors.js";
import { openTorchCheckpoint } from "../src/open-torch-checkpoint.js";
import { fixture } from "./fixture-paths.js";
import { PickleBuilder } from "./pickle-builder.js";
import { buildZip } from "./zip-builder.js";

async function refusal(path: string): Promise<ForbiddenGlobalError> {
  const error = await openTorchCheckpoint(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ForbiddenGlobalError);
  return error as ForbiddenGlobalError;
}

async function codeOf(path: string): Promise<string> {
  const error = await openTorchCheckpoint(path).then(
    async (c) => {
      await c.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(isStmergeError(error), String(error)).toBe(true);
  return (error as { code: string }).code;
}

const tmp = async (name: string, bytes: Uint8Array): Promise<string> => {
  const dir = await mkdtemp(join(tmpdir(), "safe-pickle-"));
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
};

/** A minimal torch zip: `archive/data.pkl` plus the given storages. */
const torchZip = (pickle: Uint8Array, storages: Record<string, Uint8Array> = {}, options: { zip64?: boolean; badCrc?: boolean } = {}) =>
  buildZip(
    [{ name: "archive/data.pkl", data: pickle }, ...Object.entries(storages).map(([k, data]) => ({ name: `archive/data/${k}`, data })), { name: "archive/version", data: Buffer.from("3\n") }],
    options,
  );

/** `{"w": _rebuild_tensor_v2(storage '0' of `numel` floats, 0, shape, stride, False, OrderedDict())}` */
const tensorDictPickle = (numel: number, shape: number[], stride: number[]): Uint8Array => {
  const b = new PickleBuilder().proto(2).emptyDict().str("w").global("torch._utils", "_rebuild_tensor_v2").mark()
    .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").bytes(0x4a, ...new Uint8Array(new Int32Array([numel]).buffer)).tupleFromMark().binpersid()
    .int(0).mark();
  for (const s of shape) b.bytes(0x4a, ...new Uint8Array(new Int32Array([s]).buffer));
  b.tupleFromMark().mark();
  for (const s of stride) b.bytes(0x4a, ...new Uint8Array(new Int32Array([s]).buffer));
  return b.tupleFromMark().bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce().tupleFromMark().reduce().setitem().stop().toBytes();
};

describe("hostile files are refused with the global named, and nothing runs", () => {
  it("a payload object nested in a real torch.save state dict", async () => {
    const error = await refusal(fixture("hostile_in_state_dict.ckpt"));
    expect(error.violations).toEqual([expect.objectContaining({ module: "posix", name: "system", verdict: "dangerous", placedAt: "evil" })]);
    expect(error.message).toMatch(/hostile_in_state_dict\.ckpt: refused, the pickle references dangerous global posix\.system \(GLOBAL, hostile_in_state_dict\/data\.pkl at byte \d+, under key "evil"\)/);
    expect(existsSync("/tmp/stmerge-pwned")).toBe(false);
  });

  it("a torch zip whose data.pkl was swapped for a payload", async () => {
    const error = await refusal(fixture("hostile_swapped_data_pkl.pt"));
    expect(error.violations[0]).toMatchObject({ module: "posix", name: "system", placedAt: "w" });
  });

  it("a legacy file with the payload in sys_info", async () => {
    const error = await refusal(fixture("hostile_legacy_sys_info.pt"));
    expect(error.violations[0]).toMatchObject({ module: "posix", name: "system", record: "sys_info pickle", placedAt: "type_sizes" });
  });

  it("protocol 0 (GLOBAL) and protocol 4 (STACK_GLOBAL) spellings", async () => {
    expect((await refusal(fixture("hostile_proto0.pkl"))).violations[0]).toMatchObject({ module: "posix", name: "system", opcode: "GLOBAL" });
    expect((await refusal(fixture("hostile_proto4.pkl"))).violations[0]).toMatchObject({ module: "posix", name: "system", opcode: "STACK_GLOBAL" });
  });

  it("every offending global is listed, not just the first", async () => {
    const pickle = new PickleBuilder().proto(2).emptyDict()
      .str("a").global("builtins", "exec").str("x").tuple(1).reduce().setitem()
      .str("b").global("webbrowser", "open").str("http://x").tuple(1).reduce().setitem()
      .str("c").global("mylib", "Thing").tuple(0).newobj().setitem().stop().toBytes();
    const error = await refusal(await tmp("multi.pt", torchZip(pickle)));
    expect(error.violations.map((v) => `${v.module}.${v.name}@${v.placedAt}`)).toEqual(["builtins.exec@a", "webbrowser.open@b", "mylib.Thing@c"]);
    expect(error.message).toMatch(/and 2 more/);
  });

  it("a huge shape over a tiny storage is refused before any allocation", async () => {
    const path = await tmp("huge.pt", torchZip(tensorDictPickle(4, [1 << 20, 1 << 20], [1 << 20, 1]), { "0": new Uint8Array(16) }));
    expect(await codeOf(path)).toBe("PICKLE_TENSOR_OUT_OF_BOUNDS");
  });

  it("a storage record whose size disagrees with the pickle is refused", async () => {
    const path = await tmp("short.pt", torchZip(tensorDictPickle(1000, [10], [1]), { "0": new Uint8Array(16) }));
    expect(await codeOf(path)).toBe("PICKLE_STORAGE_SIZE");
  });
});

describe("containers", () => {
  it("reads ZIP64 archives and tolerates wrong CRCs, as torch.load does", async () => {
    const values = new Float32Array([1, 2, 3, 4]);
    const bytes = new Uint8Array(values.buffer);
    for (const options of [{ zip64: true }, { badCrc: true }]) {
      const path = await tmp("z.pt", torchZip(tensorDictPickle(4, [2, 2], [1, 2]), { "0": bytes }, options));
      const checkpoint = await openTorchCheckpoint(path);
      const source = checkpoint.allTensorsSource();
      // stride (1, 2) is a transpose: contiguous order is 1, 3, 2, 4
      expect([...new Float32Array((await source.read("w")).slice().buffer)]).toEqual([1, 3, 2, 4]);
      await checkpoint.close();
    }
  });

  it("unsupported and malformed inputs fail with clear codes", async () => {
    const tar = new Uint8Array(1024);
    tar.set(Buffer.from("ustar"), 257);
    const safetensors = new Uint8Array(16);
    safetensors[0] = 8;
    safetensors[8] = 0x7b;
    const views = new Uint8Array(await readFile(fixture("views_zip.pt")));
    const legacy = new Uint8Array(await readFile(fixture("views_legacy.pt")));
    const cases: Array<[string, Uint8Array, string]> = [
      ["empty", new Uint8Array(0), "CHECKPOINT_UNSUPPORTED_FORMAT"],
      ["tar", tar, "CHECKPOINT_UNSUPPORTED_FORMAT"],
      ["safetensors", safetensors, "CHECKPOINT_UNSUPPORTED_FORMAT"],
      ["random", Uint8Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) % 251 | 0x01), "CHECKPOINT_UNSUPPORTED_FORMAT"],
      ["zip truncated", views.subarray(0, views.length - 100), "ZIP_MALFORMED"],
      ["zip cut in half", views.subarray(0, views.length >> 1), "ZIP_MALFORMED"],
      ["legacy truncated", legacy.subarray(0, legacy.length - 10), "LEGACY_MALFORMED"],
      ["legacy cut inside the object pickle", legacy.subarray(0, 200), "PICKLE_TRUNCATED"],
      ["torchscript", buildZip([{ name: "m/data.pkl", data: new Uint8Array([0x4e, 0x2e]) }, { name: "m/constants.pkl", data: new Uint8Array([0x4e, 0x2e]) }]), "CHECKPOINT_UNSUPPORTED_FORMAT"],
      ["zip without data.pkl", buildZip([{ name: "m/other", data: new Uint8Array(3) }]), "ZIP_NOT_TORCH"],
    ];
    for (const [name, bytes, code] of cases) expect(await codeOf(await tmp(`${name}.pt`, bytes)), name).toBe(code);
  });

  it("zip entry names are data, never paths", async () => {
    const pickle = new PickleBuilder().proto(2).emptyDict().stop().toBytes();
    const path = await tmp("names.pt", buildZip([{ name: "../data.pkl", data: pickle }, { name: "../data/0", data: new Uint8Array(4) }]));
    const checkpoint = await openTorchCheckpoint(path);
    expect(checkpoint.tensors).toEqual([]);
    await checkpoint.close();
    expect(existsSync(join(path, "..", "..", "data"))).toBe(false);
  });
});
