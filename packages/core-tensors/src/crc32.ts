import { createRequire } from "node:module";
import * as zlib from "node:zlib";

/** A CRC-32 (zlib's polynomial and bit order) of `bytes`, continuing from `value`, the CRC of what came before. */
type Crc32Function = (bytes: Uint8Array, value?: number) => number;

/**
 * Who computes `crc32`: @node-rs/crc32 (an optional prebuilt from npm, carry-less multiply in
 * SIMD registers: about 9 GB/s per core here, against 2.3 for zlib's), `zlib.crc32` (Node 20.15
 * and later), or a table in JavaScript (older Node). All give the same values.
 */
export type Crc32Implementation = "native" | "zlib" | "table";

const NATIVE_MODULE = "@node-rs/crc32";
const require = createRequire(import.meta.url);

let table: Uint32Array | undefined;

/** Table-driven CRC-32 for Node releases without `zlib.crc32` (before 20.15): slower, same values. */
function tableCrc32(bytes: Uint8Array, value = 0): number {
  table ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = ~value >>> 0;
  for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

/** CRC-32 of the ASCII digits 1–9: the standard check value. */
const CHECK_INPUT = new TextEncoder().encode("123456789");
const CHECK_VALUE = 0xcbf43926;

/** @node-rs/crc32's function, or undefined where it does not load or gives a wrong check value (a prebuilt for another libc or CPU). */
function loadNative(): Crc32Function | undefined {
  try {
    const mod = require(NATIVE_MODULE) as { crc32(input: Uint8Array, initialState?: number): number };
    if (mod.crc32(CHECK_INPUT, 0) >>> 0 !== CHECK_VALUE) return undefined;
    return (bytes, value = 0) => mod.crc32(bytes, value) >>> 0;
  } catch {
    return undefined;
  }
}

let implementations: Map<Crc32Implementation, Crc32Function> | undefined;

/** Every implementation this process can run, fastest first (found once, when first asked; tests hold them to the same values). */
export function crc32Implementations(): ReadonlyMap<Crc32Implementation, Crc32Function> {
  if (implementations) return implementations;
  implementations = new Map();
  const native = loadNative();
  if (native) implementations.set("native", native);
  const fromZlib = (zlib as unknown as { crc32?: (bytes: Uint8Array, value?: number) => number }).crc32;
  if (fromZlib) implementations.set("zlib", (bytes, value = 0) => fromZlib(bytes, value) >>> 0);
  implementations.set("table", tableCrc32);
  return implementations;
}

/** The implementation `crc32` uses. */
export function crc32Implementation(): Crc32Implementation {
  return crc32Implementations().keys().next().value!;
}

/**
 * Path of @node-rs/crc32 for worker threads that compute CRC-32 themselves, or undefined where it
 * is not usable here (they then use zlib's).
 */
export function nativeCrc32ModulePath(): string | undefined {
  return crc32Implementations().has("native") ? require.resolve(NATIVE_MODULE) : undefined;
}

let chosen: Crc32Function | undefined;

/** zlib's CRC-32 of `bytes`, continuing from `value` (the CRC of what came before), by the fastest implementation here. */
export function crc32(bytes: Uint8Array, value = 0): number {
  chosen ??= crc32Implementations().get(crc32Implementation())!;
  return chosen(bytes, value);
}
