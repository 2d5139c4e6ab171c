import * as zlib from "node:zlib";

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

const native = (zlib as unknown as { crc32?: (bytes: Uint8Array, value?: number) => number }).crc32;

/** zlib's CRC-32 of `bytes`, continuing from `value` (the CRC of what came before). */
export const crc32: (bytes: Uint8Array, value?: number) => number = native ? (bytes, value = 0) => native(bytes, value) >>> 0 : tableCrc32;
