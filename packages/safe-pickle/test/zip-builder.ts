import { crc32, deflateRawSync } from "node:zlib";

export interface ZipRecord {
  readonly name: string;
  readonly data: Uint8Array;
  /** Store the record DEFLATE-compressed (method 8). */
  readonly deflate?: boolean;
  /** A different name in the local header than in the central directory (a disagreeing archive). */
  readonly localName?: string;
  /** The uncompressed size written in both headers, when it should lie. */
  readonly declaredSize?: number;
}

/**
 * Writes a STORED zip archive. With `zip64` every size and offset goes through ZIP64 extra fields
 * and a ZIP64 end record (as torch's writer does for big files), even though the file is small.
 */
export function buildZip(records: readonly ZipRecord[], options: { zip64?: boolean; badCrc?: boolean; secondEndRecord?: boolean } = {}): Uint8Array {
  const chunks: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const r of records) {
    const name = Buffer.from(r.name, "utf8");
    const localName = Buffer.from(r.localName ?? r.name, "utf8");
    const crc = options.badCrc ? 0xdeadbeef : crc32(r.data) >>> 0;
    const stored = r.deflate ? deflateRawSync(r.data) : Buffer.from(r.data);
    const method = r.deflate ? 8 : 0;
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(options.zip64 ? 45 : 20, 4);
    local.writeUInt16LE(method, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(stored.length, 18);
    local.writeUInt32LE(r.declaredSize ?? r.data.length, 22);
    local.writeUInt16LE(localName.length, 26);
    chunks.push(local, localName, stored);
    const extra = Buffer.alloc(options.zip64 ? 4 + 24 : 0);
    if (options.zip64) {
      extra.writeUInt16LE(1, 0);
      extra.writeUInt16LE(24, 2);
      extra.writeBigUInt64LE(BigInt(r.data.length), 4);
      extra.writeBigUInt64LE(BigInt(stored.length), 12);
      extra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE(45, 4);
    cd.writeUInt16LE(options.zip64 ? 45 : 20, 6);
    cd.writeUInt16LE(method, 10);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(options.zip64 ? 0xffffffff : stored.length, 20);
    cd.writeUInt32LE(options.zip64 ? 0xffffffff : (r.declaredSize ?? r.data.length), 24);
    cd.writeUInt16LE(name.length, 28);
    cd.writeUInt16LE(extra.length, 30);
    cd.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 42);
    central.push(cd, name, extra);
    offset += 30 + localName.length + stored.length;
  }
  const cdBytes = Buffer.concat(central);
  const tail: Buffer[] = [];
  if (options.zip64) {
    const z = Buffer.alloc(56);
    z.writeUInt32LE(0x06064b50, 0);
    z.writeBigUInt64LE(44n, 4);
    z.writeUInt16LE(45, 12);
    z.writeUInt16LE(45, 14);
    z.writeBigUInt64LE(BigInt(records.length), 24);
    z.writeBigUInt64LE(BigInt(records.length), 32);
    z.writeBigUInt64LE(BigInt(cdBytes.length), 40);
    z.writeBigUInt64LE(BigInt(offset), 48);
    const locator = Buffer.alloc(20);
    locator.writeUInt32LE(0x07064b50, 0);
    locator.writeBigUInt64LE(BigInt(offset + cdBytes.length), 8);
    locator.writeUInt32LE(1, 16);
    tail.push(z, locator);
  }
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(options.zip64 ? 0xffff : records.length, 8);
  eocd.writeUInt16LE(options.zip64 ? 0xffff : records.length, 10);
  eocd.writeUInt32LE(options.zip64 ? 0xffffffff : cdBytes.length, 12);
  eocd.writeUInt32LE(options.zip64 ? 0xffffffff : offset, 16);
  // A second, identical end record: torch's reader takes the last one, others may take the first.
  const ends = options.secondEndRecord ? [eocd, eocd] : [eocd];
  return new Uint8Array(Buffer.concat([...chunks, cdBytes, ...tail, ...ends]));
}
