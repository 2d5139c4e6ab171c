import { mkdtemp, open, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCountingReads } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findTensors, keyText } from "../src/find-tensors.js";
import { PickleError } from "../src/pickle-errors.js";
import { DEFAULT_PICKLE_LIMITS, runPickle, type AllocationBudget } from "../src/pickle-vm.js";
import { PyDict, PyStorage, PyTensor, PyTuple } from "../src/py-values.js";
import { readStridedTensor } from "../src/read-strided-tensor.js";
import { PickleBuilder } from "./pickle-builder.js";

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "safe-pickle-budgets-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** PROTO 2, one seed value, then `count` copies of a 1-byte (or short) opcode sequence, then STOP. */
function opcodeFlood(seed: number[], unit: number[], count: number): Uint8Array {
  const bytes = new Uint8Array(2 + seed.length + unit.length * count + 1);
  bytes.set([0x80, 2, ...seed]);
  let at = 2 + seed.length;
  for (let i = 0; i < count; i++, at += unit.length) bytes.set(unit, at);
  bytes[at] = 0x2e;
  return bytes;
}

const vmError = (bytes: Uint8Array, budget: AllocationBudget, maxAllocationBytes: number): PickleError => {
  try {
    runPickle(bytes, 0, { file: "flood.pkl", record: "data.pkl", limits: { maxAllocationBytes }, allocationBudget: budget });
  } catch (error) {
    expect(error).toBeInstanceOf(PickleError);
    return error as PickleError;
  }
  throw new Error("the flood was accepted");
};

describe("VM allocation budget", () => {
  const limit = 8 << 20;
  const floods: Array<[string, Uint8Array]> = [
    ["TUPLE1 wrapping one value a million times", opcodeFlood([0x4e], [0x85], 1_000_000)],
    ["EMPTY_LIST + APPEND into one list", opcodeFlood([0x5d], [0x5d, 0x61], 1_000_000)],
    ["EMPTY_DICT kept on the stack", opcodeFlood([], [0x7d], 1_000_000)],
    ["DUP of one value", opcodeFlood([0x4e], [0x32], 3_000_000)],
    ["GLOBAL of an unknown class appended to a list", opcodeFlood([0x5d], [...Buffer.from("ca\nb\n"), 0x61], 200_000)],
    ["SHORT_BINUNICODE strings of 255 bytes appended", opcodeFlood([0x5d], [0x8c, 255, ...new Uint8Array(255).fill(0x41), 0x61], 100_000)],
    ["MEMOIZE of fresh dicts", opcodeFlood([], [0x7d, 0x94, 0x30], 1_000_000)],
  ];
  for (const [name, bytes] of floods) {
    it(`${name} is refused with PICKLE_LIMIT naming the limit, the charge stays at the limit`, () => {
      const budget = { used: 0 };
      const error = vmError(bytes, budget, limit);
      expect(error.code).toBe("PICKLE_LIMIT");
      expect(error.message).toMatch(/more than 8388608 bytes of objects \(maxAllocationBytes resource limit\)/);
      // Refused as soon as the charge passes the limit: one object over, never the whole flood.
      expect(budget.used).toBeGreaterThan(limit);
      expect(budget.used).toBeLessThan(limit + 4096);
    });
  }

  it("the default budget is 256 MiB and a real-sized state dict is charged far below it", () => {
    expect(DEFAULT_PICKLE_LIMITS.maxAllocationBytes).toBe(256 << 20);
    // 3000 entries of {name: (1, 2, 3)} costs a few hundred KB of charge.
    const b = new PickleBuilder().proto(2).emptyDict();
    for (let i = 0; i < 3000; i++) b.str(`model.diffusion_model.block.${i}.weight`).int(1).int(2).int(3).tuple(3).setitem();
    const budget = { used: 0 };
    const result = runPickle(b.stop().toBytes(), 0, { file: "ok.pkl", record: "data.pkl", allocationBudget: budget });
    expect((result.value as PyDict).entries.size).toBe(3000);
    expect(budget.used).toBeGreaterThan(3000 * 100);
    expect(budget.used).toBeLessThan(2 << 20);
  });

  it("one budget spans every pickle of a file", () => {
    const budget = { used: 0 };
    const one = opcodeFlood([0x4e], [0x85], 20_000);
    runPickle(one, 0, { file: "f", record: "a", allocationBudget: budget, limits: { maxAllocationBytes: 8 << 20 } });
    const afterOne = budget.used;
    expect(afterOne).toBeGreaterThan(20_000 * 64);
    for (let i = 0; i < 2; i++) runPickle(one, 0, { file: "f", record: "b", allocationBudget: budget, limits: { maxAllocationBytes: 8 << 20 } });
    expect(budget.used).toBe(3 * afterOne);
    expect(() => runPickle(one, 0, { file: "f", record: "c", allocationBudget: budget, limits: { maxAllocationBytes: 3 * afterOne + 1000 } })).toThrow(/maxAllocationBytes/);
  });
});

describe("no recursion on attacker-controlled depth", () => {
  it("a dict key of 100,000 nested tuples is named without recursing through it", () => {
    let key = new PyTuple(["leaf"]);
    for (let i = 0; i < 100_000; i++) key = new PyTuple([key, i]);
    expect(keyText(key)).toBe("(((((...), 99996), 99997), 99998), 99999)");
    const storage = new PyStorage("0", "F32", "float32", 4, 4, "cpu");
    const dict = new PyDict();
    dict.entries.set(key, new PyTensor(storage, "F32", "float32", 4, 0, [1], [1]));
    const found = findTensors(dict);
    expect(found).toHaveLength(1);
    expect(String(found[0]!.path[0])).toBe("(((((...), 99996), 99997), 99998), 99999)");
  });

  it("a tensor with more than 64 dims is refused with a one-line limit error", () => {
    const dims = 100;
    const b = new PickleBuilder().proto(2).global("torch._utils", "_rebuild_tensor_v2").mark()
      .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(1).tupleFromMark().binpersid()
      .int(0).mark();
    for (let i = 0; i < dims; i++) b.int(1);
    b.tupleFromMark().mark();
    for (let i = 0; i < dims; i++) b.int(1);
    b.tupleFromMark().bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce().tupleFromMark().reduce().stop();
    const storage = new PyStorage("0", "F32", "float32", 4, 4, "cpu");
    expect(() => runPickle(b.toBytes(), 0, { file: "dims.pt", record: "data.pkl", persistentLoad: () => storage })).toThrow(
      expect.objectContaining({ code: "PICKLE_LIMIT", message: expect.stringMatching(/^dims\.pt: data\.pkl byte \d+: tensor has 100 dims, over the limit of 64 \(resource limit\)$/) }),
    );
  });
});

describe("strided views are gathered in bounded pieces", () => {
  it("a 2-element view with a 1 GiB stride reads 8 bytes, not the 1 GiB span", async () => {
    const path = join(dir, "sparse.bin");
    const stride = 1 << 28; // elements of 4 bytes: 1 GiB apart
    const file = await open(path, "w+");
    try {
      await file.truncate(4 * stride + 4); // sparse: costs no disk
      await file.write(new Uint8Array(new Float32Array([1.5]).buffer), 0, 4, 0);
      await file.write(new Uint8Array(new Float32Array([-3]).buffer), 0, 4, 4 * stride);
    } finally {
      await file.close();
    }
    const storage = new PyStorage("0", "F32", "float32", 4, 4 * stride + 4, "cpu");
    const tensor = new PyTensor(storage, "F32", "float32", 4, 0, [2], [stride]);
    const { handle, reads, close } = await openCountingReads(path);
    try {
      const bytes = await readStridedTensor(handle, { fileOffset: 0, byteLength: storage.byteLength }, tensor, path);
      expect([...new Float32Array(bytes.slice().buffer)]).toEqual([1.5, -3]);
      expect(reads.reduce((a, b) => a + b, 0)).toBe(8);
    } finally {
      await close();
    }
  });

  it("a long 1-D step slice is read in chunks of at most maxSpanBytes", async () => {
    const path = join(dir, "steps.bin");
    const values = Int16Array.from({ length: 10_000 }, (_, i) => i);
    await writeFile(path, new Uint8Array(values.buffer));
    const storage = new PyStorage("0", "I16", "int16", 2, 20_000, "cpu");
    const tensor = new PyTensor(storage, "I16", "int16", 2, 3, [1000], [7]);
    const { handle, reads, close } = await openCountingReads(path);
    try {
      const bytes = await readStridedTensor(handle, { fileOffset: 0, byteLength: 20_000 }, tensor, path, { maxSpanBytes: 256 });
      expect([...new Int16Array(bytes.slice().buffer)]).toEqual(Array.from({ length: 1000 }, (_, i) => 3 + 7 * i));
      expect(Math.max(...reads)).toBeLessThanOrEqual(256);
      expect(reads.reduce((a, b) => a + b, 0)).toBeLessThan(14_000);
    } finally {
      await close();
    }
  });
});
