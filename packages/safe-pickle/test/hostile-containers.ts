import { PickleBuilder } from "./pickle-builder.js";
import { buildZip, type ZipRecord } from "./zip-builder.js";

/**
 * Hostile containers built byte by byte: each hides a payload (or a decoy) where one reader sees it
 * and another may not. The payload calls `builtins.print("STMERGE_PAYLOAD_RAN")`, so the oracle
 * test can tell from torch.load's output whether torch would have executed it.
 */
export interface HostileContainer {
  readonly name: string;
  readonly bytes: Uint8Array;
  /** `openTorchCheckpoint`: the error code, or "ok" when it loads. */
  readonly open: string;
  readonly audit: "clean" | "unsafe" | "unreadable";
}

export const PAYLOAD_MARKER = "STMERGE_PAYLOAD_RAN";

/** `{"w": print("STMERGE_PAYLOAD_RAN")}` */
export const payloadPickle = (): Uint8Array =>
  new PickleBuilder().proto(2).emptyDict().str("w").global("builtins", "print").str(PAYLOAD_MARKER).tuple(1).reduce().setitem().stop().toBytes();

/** `{"w": tensor of 4 float32 over storage "0"}`, as torch.save writes it. */
export const cleanPickle = (): Uint8Array =>
  new PickleBuilder().proto(2).emptyDict().str("w").global("torch._utils", "_rebuild_tensor_v2").mark()
    .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").int(4).tupleFromMark().binpersid()
    .int(0).int(4).tuple(1).int(1).tuple(1).bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce().tupleFromMark().reduce()
    .setitem().stop().toBytes();

const floats = new Uint8Array(new Float32Array([1, 2, 3, 4]).buffer);
const text = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));

/** A torch zip: the given records first, then storage 0, byteorder and version (unless replaced). */
const torchZip = (records: ZipRecord[], options: Parameters<typeof buildZip>[1] = {}): Uint8Array => {
  const names = new Set(records.map((r) => r.name));
  const rest: ZipRecord[] = [
    { name: "archive/byteorder", data: text("little") },
    { name: "archive/data/0", data: floats },
    { name: "archive/version", data: text("3\n") },
  ].filter((r) => !names.has(r.name));
  return buildZip([...records, ...rest], options);
};

/** One 512-byte v7 tar header (no `ustar` magic) with a valid checksum, then the data padded to 512. */
export function tarMember(name: Uint8Array, data: Uint8Array): Uint8Array {
  const header = new Uint8Array(512);
  header.set(name.subarray(0, 100), 0);
  header.set(text("0000644\0"), 100);
  header.set(text("0000000\0"), 108);
  header.set(text("0000000\0"), 116);
  header.set(text(`${data.length.toString(8).padStart(11, "0")}\0`), 124);
  header.set(text("00000000000\0"), 136);
  header.set(text("        "), 148);
  header[156] = 0x30; // regular file
  let sum = 0;
  for (const b of header) sum += b;
  header.set(text(`${sum.toString(8).padStart(6, "0")}\0 `), 148);
  const padded = new Uint8Array(Math.ceil(data.length / 512) * 512);
  padded.set(data);
  return new Uint8Array(Buffer.concat([header, padded]));
}

const tar = (...members: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat([...members, new Uint8Array(1024)]));

/** The legacy stacked-pickle format holding `{}` and no storages. */
const legacyEmpty = (): Uint8Array => {
  const magic = new PickleBuilder().proto(2).bytes(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).stop();
  const protocol = new PickleBuilder().proto(2).bytes(0x4d, 0xe9, 0x03).stop();
  const sysInfo = new PickleBuilder().proto(2).emptyDict().str("little_endian").bytes(0x88).setitem().stop();
  const object = new PickleBuilder().proto(2).emptyDict().stop();
  const keys = new PickleBuilder().proto(2).emptyList().stop();
  return new Uint8Array(Buffer.concat([magic, protocol, sysInfo, object, keys].map((b) => b.toBytes())));
};

const concat = (...parts: Uint8Array[]): Uint8Array => new Uint8Array(Buffer.concat(parts));

/**
 * A big-endian torch zip (byteorder "big") with `w`: 2 int16 over an untyped 4-byte storage
 * (`_rebuild_tensor_v3`, bytes 01 02 03 04), and `f`: 2 float32 over a typed FloatStorage
 * stored big-endian (1.5, -2). torch swaps by the storage's type: `f` is swapped, `w` is not.
 */
export function bigEndianMixedStorages(): Uint8Array {
  const tail = (b: PickleBuilder): PickleBuilder => b.bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce();
  const b = new PickleBuilder().proto(2).emptyDict().str("w").global("torch._utils", "_rebuild_tensor_v3").mark()
    .mark().str("storage").global("torch.storage", "UntypedStorage").str("0").str("cpu").int(4).tupleFromMark().binpersid()
    .int(0).int(2).tuple(1).int(1).tuple(1);
  tail(b).global("torch", "int16").tupleFromMark().reduce().setitem();
  b.str("f").global("torch._utils", "_rebuild_tensor_v2").mark()
    .mark().str("storage").global("torch", "FloatStorage").str("1").str("cpu").int(2).tupleFromMark().binpersid()
    .int(0).int(2).tuple(1).int(1).tuple(1);
  tail(b).tupleFromMark().reduce().setitem();
  const big = new Uint8Array(8);
  new DataView(big.buffer).setFloat32(0, 1.5, false);
  new DataView(big.buffer).setFloat32(4, -2, false);
  return buildZip([
    { name: "archive/data.pkl", data: b.stop().toBytes() },
    { name: "archive/byteorder", data: text("big") },
    { name: "archive/data/0", data: Uint8Array.from([1, 2, 3, 4]) },
    { name: "archive/data/1", data: big },
    { name: "archive/version", data: text("3\n") },
  ]);
}

const int32 = (v: number): number[] => [...new Uint8Array(new Int32Array([v]).buffer)];

/** `{"t0": view, "t1": view, ...}`: `count` tensors, each viewing all `numel` floats of storage "0". */
function sharedViewsPickle(count: number, numel: number): Uint8Array {
  const b = new PickleBuilder().proto(2).emptyDict();
  for (let i = 0; i < count; i++) {
    b.str(`t${i}`).global("torch._utils", "_rebuild_tensor_v2").mark()
      .mark().str("storage").global("torch", "FloatStorage").str("0").str("cpu").bytes(0x4a, ...int32(numel)).tupleFromMark().binpersid()
      .int(0).bytes(0x4a, ...int32(numel)).tuple(1).int(1).tuple(1).bytes(0x89).global("collections", "OrderedDict").tuple(0).reduce().tupleFromMark().reduce()
      .setitem();
  }
  return b.stop().toBytes();
}

/** A 1 MiB torch zip whose 100 tensors all view its one storage: 100 MiB of output. */
export function amplifiedSharedViews(): Uint8Array {
  const numel = 1 << 18;
  return buildZip([{ name: "archive/data.pkl", data: sharedViewsPickle(100, numel) }, { name: "archive/data/0", data: new Uint8Array(numel * 4) }]);
}

export function hostileContainers(): HostileContainer[] {
  const payload = payloadPickle();
  const clean = cleanPickle();
  return [
    { name: "zip-clean", bytes: torchZip([{ name: "archive/data.pkl", data: clean }]), open: "ok", audit: "clean" },
    { name: "zip-payload-in-upper-case-data-pkl", bytes: torchZip([{ name: "archive/DATA.PKL", data: payload }]), open: "PICKLE_FORBIDDEN_GLOBAL", audit: "unsafe" },
    { name: "zip-case-twins", bytes: torchZip([{ name: "archive/data.pkl", data: clean }, { name: "archive/Data.pkl", data: payload }]), open: "ZIP_AMBIGUOUS", audit: "unsafe" },
    { name: "zip-duplicate-names", bytes: torchZip([{ name: "archive/data.pkl", data: clean }, { name: "archive/data.pkl", data: payload }]), open: "ZIP_AMBIGUOUS", audit: "unsafe" },
    { name: "zip-two-end-records", bytes: torchZip([{ name: "archive/data.pkl", data: clean }], { secondEndRecord: true }), open: "ZIP_AMBIGUOUS", audit: "unsafe" },
    { name: "zip-local-name-disagrees", bytes: torchZip([{ name: "archive/data.pkl", localName: "archive/decoy.pkl", data: clean }]), open: "ZIP_AMBIGUOUS", audit: "unsafe" },
    { name: "zip-deflated-payload", bytes: torchZip([{ name: "archive/data.pkl", data: payload, deflate: true }]), open: "PICKLE_FORBIDDEN_GLOBAL", audit: "unsafe" },
    { name: "zip-deflated-clean", bytes: torchZip([{ name: "archive/data.pkl", data: clean, deflate: true }]), open: "ok", audit: "clean" },
    { name: "zip-payload-in-extra-pkl", bytes: torchZip([{ name: "archive/data.pkl", data: clean }, { name: "archive/extra.pkl", data: payload }]), open: "PICKLE_FORBIDDEN_GLOBAL", audit: "unsafe" },
    {
      name: "zip-deflate-bomb",
      bytes: torchZip([{ name: "archive/data.pkl", data: concat(clean, new Uint8Array(1 << 20)), deflate: true, declaredSize: clean.length }]),
      open: "ZIP_MALFORMED",
      audit: "unreadable",
    },
    { name: "zip-byteorder-with-newline", bytes: torchZip([{ name: "archive/data.pkl", data: clean }, { name: "archive/byteorder", data: text("big\n") }]), open: "ZIP_MALFORMED", audit: "unreadable" },
    { name: "tar-v7-payload-in-storages", bytes: tar(tarMember(text("storages"), payload)), open: "CHECKPOINT_UNSUPPORTED_FORMAT", audit: "unreadable" },
    // The first header's name field "}." is also a pickle (an empty dict): a pickle reader sees `{}`.
    { name: "tar-pickle-polyglot", bytes: tar(tarMember(text("}."), new Uint8Array(0)), tarMember(text("storages"), payload)), open: "CHECKPOINT_UNSUPPORTED_FORMAT", audit: "unreadable" },
    { name: "pickle-then-payload-pickle", bytes: concat(new PickleBuilder().proto(2).emptyDict().stop().toBytes(), payload), open: "PICKLE_FORBIDDEN_GLOBAL", audit: "unsafe" },
    { name: "pickle-then-garbage", bytes: concat(new PickleBuilder().proto(2).emptyDict().stop().toBytes(), text("\xff\xfe not a pickle")), open: "PICKLE_TRAILING_DATA", audit: "unreadable" },
    // A safetensors-shaped head (u64 length, then "{") whose bytes are also a pickle: BINFLOAT eats the
    // length and the "{", POP drops it, then the payload. torch.load runs pickle.load on it.
    {
      name: "safetensors-shaped-pickle",
      bytes: concat(Uint8Array.from([0x47, 0x10, 0, 0, 0, 0, 0, 0, 0x7b, 0x30]), payload, new Uint8Array(4200).fill(0x20)),
      open: "CHECKPOINT_UNSUPPORTED_FORMAT",
      audit: "unsafe",
    },
    { name: "legacy-then-payload-pickle", bytes: concat(legacyEmpty(), payload), open: "PICKLE_FORBIDDEN_GLOBAL", audit: "unsafe" },
  ];
}
