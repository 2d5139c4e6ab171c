/** Builds pickle byte streams opcode by opcode, for crafting hostile and edge-case inputs in tests. */
export class PickleBuilder {
  private readonly parts: number[] = [];

  bytes(...values: number[]): this {
    this.parts.push(...values);
    return this;
  }
  text(s: string): this {
    for (const c of Buffer.from(s, "latin1")) this.parts.push(c);
    return this;
  }
  proto(v = 2): this { return this.bytes(0x80, v); }
  mark(): this { return this.bytes(0x28); }
  stop(): this { return this.bytes(0x2e); }
  none(): this { return this.bytes(0x4e); }
  global(module: string, name: string): this { return this.bytes(0x63).text(`${module}\n${name}\n`); }
  inst(module: string, name: string): this { return this.bytes(0x69).text(`${module}\n${name}\n`); }
  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    if (b.length < 256) return this.bytes(0x8c, b.length, ...b);
    return this.bytes(0x58, ...u32(b.length), ...b);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.bytes(0x4b, n);
    return this.bytes(0x4a, ...i32(n));
  }
  tuple(n: 0 | 1 | 2 | 3): this { return this.bytes([0x29, 0x85, 0x86, 0x87][n]!); }
  tupleFromMark(): this { return this.bytes(0x74); }
  emptyDict(): this { return this.bytes(0x7d); }
  emptyList(): this { return this.bytes(0x5d); }
  setitem(): this { return this.bytes(0x73); }
  setitems(): this { return this.bytes(0x75); }
  append(): this { return this.bytes(0x61); }
  reduce(): this { return this.bytes(0x52); }
  build(): this { return this.bytes(0x62); }
  newobj(): this { return this.bytes(0x81); }
  obj(): this { return this.bytes(0x6f); }
  stackGlobal(): this { return this.bytes(0x93); }
  put(i: number): this { return this.bytes(0x71, i); }
  get(i: number): this { return this.bytes(0x68, i); }
  longPut(i: number): this { return this.bytes(0x72, ...u32(i)); }
  longGet(i: number): this { return this.bytes(0x6a, ...u32(i)); }
  memoize(): this { return this.bytes(0x94); }
  binpersid(): this { return this.bytes(0x51); }
  dup(): this { return this.bytes(0x32); }
  pop(): this { return this.bytes(0x30); }
  toBytes(): Uint8Array { return Uint8Array.from(this.parts); }
}

function u32(n: number): number[] {
  return [n & 0xff, (n >>> 8) & 0xff, (n >>> 16) & 0xff, (n >>> 24) & 0xff];
}
function i32(n: number): number[] {
  return u32(n >>> 0);
}

/** `{key: <payload>}` where `payload` pushes exactly one value. */
export function dictWith(key: string, payload: (p: PickleBuilder) => PickleBuilder): Uint8Array {
  return payload(new PickleBuilder().proto(2).emptyDict().str(key)).setitem().stop().toBytes();
}
