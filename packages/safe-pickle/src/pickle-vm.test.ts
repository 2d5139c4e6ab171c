import { describe, expect, it } from "vitest";
import { PickleBuilder, dictWith } from "../test/pickle-builder.js";
import { findTensors } from "./find-tensors.js";
import { PickleError } from "./pickle-errors.js";
import { runPickle } from "./pickle-vm.js";
import { PyDict, PyGlobal, PyOpaque, PyStorage, PyTensor, PyTuple, type PyValue } from "./py-values.js";

const run = (bytes: Uint8Array, persistentLoad?: (pid: PyValue) => PyValue) =>
  runPickle(bytes, 0, { file: "test.pkl", record: "data.pkl", ...(persistentLoad ? { persistentLoad } : {}) });

describe("runPickle: data", () => {
  it("builds dicts, lists, tuples, ints, floats, strings and bytes", () => {
    const p = new PickleBuilder().proto(2).emptyDict()
      .str("a").int(5).setitem()
      .str("b").emptyList().str("x").append().setitem()
      .str("c").int(1).int(2).tuple(2).setitem()
      .str("d").bytes(0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18).setitem()
      .str("e").bytes(0x43, 2, 0xaa, 0xbb).setitem()
      .str("f").bytes(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1).setitem()
      .stop().toBytes();
    const d = run(p).value as PyDict;
    expect(d.get("a")).toBe(5);
    expect(d.get("b")).toEqual(["x"]);
    expect((d.get("c") as PyTuple).items).toEqual([1, 2]);
    expect(d.get("d")).toBeCloseTo(Math.PI);
    expect(d.get("e")).toEqual(Uint8Array.from([0xaa, 0xbb]));
    expect(d.get("f")).toBe(1n << 64n);
  });

  it("keeps __proto__ and constructor as plain dict keys", () => {
    const p = new PickleBuilder().proto(2).emptyDict().mark().str("__proto__").int(1).str("constructor").int(2).setitems().stop().toBytes();
    const d = run(p).value as PyDict;
    expect(d.get("__proto__")).toBe(1);
    expect(d.get("constructor")).toBe(2);
    expect(Object.getPrototypeOf(d)).toBe(PyDict.prototype);
  });

  it("decodes protocol 0 text opcodes", () => {
    const p = new PickleBuilder().mark().text("S'a\\nb'\n").text("I42\n").text("L12345678901234567890L\n").text("F1.5\n").text("Vcaf\\u00e9\n").bytes(0x6c).stop().toBytes();
    expect(run(p).value).toEqual(["a\nb", 42, 12345678901234567890n, 1.5, "café"]);
  });

  it("builds tensors from _rebuild_tensor_v2 over a persistent storage and checks extents", () => {
    const storage = new PyStorage("0", "F32", "float32", 4, 24, "cpu");
    const tensorPickle = (shape: number[]) => {
      // _rebuild_tensor_v2(persistent_load(('storage', FloatStorage, '0', 'cpu', 6)), 0, shape, stride, False, OrderedDict())
      const b = new PickleBuilder().proto(2).global("torch._utils", "_rebuild_tensor_v2").mark()
        .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(6).tupleFromMark().binpersid()
        .int(0).mark();
      for (const s of shape) b.int(s);
      b.tupleFromMark().mark();
      let stride = 1;
      const strides: number[] = [];
      for (let i = shape.length - 1; i >= 0; i--) {
        strides.unshift(stride);
        stride *= shape[i]!;
      }
      for (const s of strides) b.int(s);
      b.tupleFromMark().bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce().tupleFromMark().reduce().stop();
      return b.toBytes();
    };
    const ok = run(tensorPickle([2, 3]), () => storage).value;
    expect(ok).toBeInstanceOf(PyTensor);
    expect((ok as PyTensor).shape).toEqual([2, 3]);
    expect(() => run(tensorPickle([1000, 1000]), () => storage)).toThrow(/needs 4000000 bytes of storage "0", which holds 24/);
    expect(() => run(tensorPickle([100000, 100000, 100000, 100000]), () => storage)).toThrow(PickleError);
  });
});

describe("runPickle: refusals (nothing is ever called)", () => {
  const dangerous: Array<[string, string]> = [
    ["os", "system"], ["posix", "system"], ["nt", "system"], ["builtins", "eval"], ["builtins", "exec"], ["builtins", "getattr"],
    ["builtins", "__import__"], ["subprocess", "Popen"], ["subprocess", "check_output"], ["runpy", "_run_code"], ["importlib", "import_module"],
    ["functools", "partial"], ["webbrowser", "open"], ["torch.hub", "load"], ["operator", "attrgetter"],
  ];
  for (const [module, name] of dangerous) {
    it(`GLOBAL + REDUCE of ${module}.${name} is a dangerous violation, placed under its key`, () => {
      const bytes = dictWith("payload", (p) => p.global(module, name).str("echo pwned").tuple(1).reduce());
      const result = run(bytes);
      expect(result.violations).toEqual([expect.objectContaining({ module, name, verdict: "dangerous", opcode: "GLOBAL", placedAt: "payload" })]);
      expect((result.value as PyDict).get("payload")).toBeInstanceOf(PyOpaque);
    });
  }

  it("an unknown global is a violation with verdict unknown", () => {
    const result = run(dictWith("x", (p) => p.global("mypkg.models", "Net").tuple(0).reduce()));
    expect(result.violations[0]).toMatchObject({ module: "mypkg.models", name: "Net", verdict: "unknown" });
  });

  it("STACK_GLOBAL with module and name fetched from the memo is resolved and refused", () => {
    const bytes = new PickleBuilder().proto(4).str("os").memoize().pop().str("system").memoize().pop()
      .emptyDict().str("k").get(0).get(1).stackGlobal().str("id").tuple(1).reduce().setitem().stop().toBytes();
    const result = run(bytes);
    expect(result.violations).toEqual([expect.objectContaining({ module: "os", name: "system", opcode: "STACK_GLOBAL", placedAt: "k" })]);
  });

  it("INST, OBJ, NEWOBJ and EXT1/EXT2/EXT4 are refused", () => {
    const inst = run(new PickleBuilder().mark().str("rm -rf /").inst("os", "system").stop().toBytes());
    expect(inst.violations[0]).toMatchObject({ module: "os", name: "system", opcode: "INST" });
    const obj = run(new PickleBuilder().proto(2).mark().global("subprocess", "Popen").str("ls").obj().stop().toBytes());
    expect(obj.violations[0]).toMatchObject({ module: "subprocess", name: "Popen", verdict: "dangerous" });
    const newobj = run(new PickleBuilder().proto(2).global("collections", "UserDict").tuple(0).newobj().stop().toBytes());
    expect(newobj.violations[0]).toMatchObject({ module: "collections", name: "UserDict", verdict: "unknown" });
    for (const ext of [[0x82, 1], [0x83, 1, 0], [0x84, 1, 0, 0, 0]]) {
      const r = run(new PickleBuilder().proto(2).bytes(...ext).tuple(0).reduce().stop().toBytes());
      expect(r.violations[0]).toMatchObject({ module: "copyreg._extension_registry", name: "1" });
    }
  });

  it("calling an allowlisted non-constructor (a dtype) is an error, not a call", () => {
    expect(() => run(new PickleBuilder().proto(2).global("torch", "float32").tuple(0).reduce().stop().toBytes())).toThrow(/data, not a constructor/);
  });

  it("NEWOBJ of an allowlisted non-inert type is refused", () => {
    expect(() => run(new PickleBuilder().proto(2).global("torch", "Tensor").tuple(0).newobj().stop().toBytes())).toThrow(/not an inert data class/);
  });

  it("_codecs.encode accepts text codecs only", () => {
    const ok = run(new PickleBuilder().proto(2).global("_codecs", "encode").str("\u00ff").str("latin1").tuple(2).reduce().stop().toBytes());
    expect(ok.value).toEqual(Uint8Array.from([0xff]));
    expect(() => run(new PickleBuilder().proto(2).global("_codecs", "encode").str("x").str("rot13").tuple(2).reduce().stop().toBytes())).toThrow(/refuses codec/);
  });
});

describe("runPickle: resource safety", () => {
  it("200,000 nested lists succeed without recursion", () => {
    const depth = 200_000;
    const b = new PickleBuilder().proto(2);
    for (let i = 0; i < depth; i++) b.emptyList();
    for (let i = 0; i < depth - 1; i++) b.append();
    const result = run(b.stop().toBytes());
    let node = result.value as PyValue[];
    let levels = 1;
    while (node.length === 1) {
      node = node[0] as PyValue[];
      levels++;
    }
    expect(levels).toBe(depth);
    expect(findTensors(result.value)).toEqual([]);
  });

  it("too many open MARKs is a clear limit error", () => {
    const bytes = new Uint8Array(2_000_001).fill(0x28);
    bytes[0] = 0x80;
    bytes[1] = 2;
    expect(() => run(bytes)).toThrow(/open MARKs \(resource limit\)/);
  });

  it("an exponential memo structure costs nothing: shared references are never expanded", () => {
    const b = new PickleBuilder().proto(2).emptyList().longPut(0);
    for (let i = 1; i <= 100; i++) b.longGet(i - 1).longGet(i - 1).tuple(2).longPut(i).pop();
    const result = run(b.longGet(100).stop().toBytes());
    let node = result.value as PyTuple;
    expect(node.items[0]).toBe(node.items[1]);
    for (let i = 0; i < 99; i++) node = node.items[0] as PyTuple;
    expect(findTensors(result.value)).toEqual([]);
  });

  it("huge LONG4 and oversized length prefixes are refused before allocating", () => {
    expect(() => run(new PickleBuilder().proto(2).bytes(0x8b, 0xff, 0xff, 0xff, 0x7f).stop().toBytes())).toThrow(/int limit/);
    expect(() => run(new PickleBuilder().proto(4).bytes(0x8e, 0, 0, 0, 0, 0, 0, 0, 0x10).stop().toBytes())).toThrow(/declares/);
    expect(() => run(new PickleBuilder().proto(2).bytes(0x42, 0xff, 0xff, 0xff, 0x7f).stop().toBytes())).toThrow(/truncated/);
  });

  it("malformed streams fail with a clear code", () => {
    const cases: Array<[Uint8Array, string]> = [
      [new Uint8Array([]), "PICKLE_TRUNCATED"],
      [new Uint8Array([0x80, 2, 0x5d]), "PICKLE_TRUNCATED"],
      [new Uint8Array([0x80, 9]), "PICKLE_BAD_PROTOCOL"],
      [new Uint8Array([0xff]), "PICKLE_BAD_OPCODE"],
      [new Uint8Array([0x2e]), "PICKLE_STACK_UNDERFLOW"],
      [new Uint8Array([0x68, 7, 0x2e]), "PICKLE_BAD_MEMO"],
      [new Uint8Array([0x7d, 0x5d, 0x4b, 1, 0x73, 0x2e]), "PICKLE_UNHASHABLE"],
      [new Uint8Array([0x74, 0x2e]), "PICKLE_NO_MARK"],
      [new Uint8Array([0x4b, 1, 0x51, 0x2e]), "PICKLE_PERSISTENT_ID"],
    ];
    for (const [bytes, code] of cases) {
      let caught: unknown;
      try {
        run(bytes);
      } catch (error) {
        caught = error;
      }
      expect(caught, code).toBeInstanceOf(PickleError);
      expect((caught as PickleError).code).toBe(code);
    }
  });

  it("globals are data: a referenced allowlisted class stays a PyGlobal", () => {
    const result = run(new PickleBuilder().proto(2).global("torch", "FloatStorage").stop().toBytes());
    expect(result.value).toBeInstanceOf(PyGlobal);
    expect(result.violations).toEqual([]);
  });
});

describe("runPickle: large containers", () => {
  it("APPENDS and ADDITEMS of 300,000 items into a list, a set and an inert record", () => {
    const n = 300_000;
    for (const [open, close] of [[[0x5d], 0x65], [[0x8f], 0x90]] as const) {
      const b = new PickleBuilder().proto(4).bytes(...open).mark();
      for (let i = 0; i < n; i++) b.int(1);
      const value = runPickle(b.bytes(close).stop().toBytes(), 0, { file: "t", record: "r" }).value;
      expect(Array.isArray(value) ? value.length : (value as { items: unknown[] }).items.length).toBe(n);
    }
    const r = new PickleBuilder().proto(2).global("argparse", "Namespace").tuple(0).newobj().mark();
    for (let i = 0; i < n; i++) r.int(1);
    const record = runPickle(r.bytes(0x65).stop().toBytes(), 0, { file: "t", record: "r" }).value as unknown as { listItems: unknown[] };
    expect(record.listItems.length).toBe(n);
  });
});

describe("runPickle: random streams", () => {
  it("random opcode soup either builds a value or fails with a PickleError", async () => {
    const fc = (await import("fast-check")).default;
    const opcodes = [0x28, 0x2e, 0x30, 0x31, 0x32, 0x4e, 0x5d, 0x7d, 0x29, 0x61, 0x65, 0x73, 0x75, 0x74, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8f, 0x90, 0x91, 0x94, 0x68, 0x71, 0x4b, 0x52, 0x81, 0x62, 0x93, 0x8c, 0x43, 0x8a, 0x51, 0x6f];
    const soup = fc.array(fc.oneof(fc.constantFrom(...opcodes), fc.integer({ min: 0, max: 255 })), { maxLength: 200 });
    fc.assert(
      fc.property(soup, (bytes) => {
        try {
          runPickle(Uint8Array.from([0x80, 4, ...bytes]), 0, { file: "soup", record: "r", persistentLoad: () => null });
        } catch (error) {
          expect(error, String(error)).toBeInstanceOf(PickleError);
        }
      }),
      { numRuns: 2000, seed: 99 },
    );
  });
});
