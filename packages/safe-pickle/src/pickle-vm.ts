import { buildFromGlobal, instantiateClass, type CallSite } from "./build-from-global.js";
import { classifyGlobal } from "./allowlist.js";
import { PickleError, type PickleViolation } from "./pickle-errors.js";
import { normalizeInt, PyDict, PyGlobal, PyOpaque, PyRecord, PySet, PyTensor, PyTuple, pyTypeName, type PyValue } from "./py-values.js";

export interface PickleLimits {
  /** Most values on the stack at once (nesting depth of unfinished containers counts here). */
  readonly maxStack: number;
  /** Most memo entries. */
  readonly maxMemo: number;
  /** Most open MARKs. */
  readonly maxMarks: number;
  /** Longest LONG1/LONG4/text int in bytes; big ints are never tensor data. */
  readonly maxIntBytes: number;
  /**
   * Total memory the VM may allocate for one file's pickles, estimated per object built (values,
   * container slots, memo entries, globals seen), never given back on POP: a small file of 1-byte
   * opcodes that each build an object cannot grow the process without bound.
   */
  readonly maxAllocationBytes: number;
}

export const DEFAULT_PICKLE_LIMITS: PickleLimits = { maxStack: 4_000_000, maxMemo: 4_000_000, maxMarks: 1_000_000, maxIntBytes: 4096, maxAllocationBytes: 256 << 20 };

/** Bytes charged so far; one instance is shared by every pickle of a file so their sum is bounded. */
export interface AllocationBudget {
  used: number;
}

/**
 * Estimated V8 cost of what the VM builds (measured orders of magnitude, rounded up): an object
 * header with a few fields, one slot in an array or on the stack, one Map entry.
 */
const COST = { object: 64, slot: 8, mapEntry: 48, memoEntry: 48, globalUse: 256, string: 24 } as const;

/** A global the pickle references, as the audit lists it. */
export interface GlobalUse {
  readonly module: string;
  readonly name: string;
  readonly verdict: "allowed" | "unknown" | "dangerous";
  readonly opcode: string;
  readonly offset: number;
  readonly record: string;
  /** For refused globals: the dict key the refused object was stored under. */
  placedAt?: string;
}

export interface PickleRunOptions {
  /** The file, for messages. */
  readonly file: string;
  /** The pickle record inside the file, for messages (`archive/data.pkl`, `object pickle`). */
  readonly record: string;
  /** Resolves persistent ids (torch storages); without it a persistent id is an error. */
  readonly persistentLoad?: (pid: PyValue, site: CallSite) => PyValue;
  readonly limits?: Partial<PickleLimits>;
  /** Receives every global as it is resolved, so an audit keeps what it saw even when the pickle later turns out malformed. */
  readonly globalsSink?: GlobalUse[];
  /** Shared across the pickles of one file (the legacy format has five); a fresh one per run when absent. */
  readonly allocationBudget?: AllocationBudget;
}

export interface PickleRunResult {
  readonly value: PyValue;
  /** Offset just past the STOP opcode. */
  readonly end: number;
  readonly globals: readonly GlobalUse[];
  /** Globals outside the allowlist; loaders refuse the file when this is not empty. */
  readonly violations: readonly PickleViolation[];
}

/** Thrown when the bytes end before STOP; legacy readers catch it to read further. */
export class PickleTruncatedError extends PickleError {}

const OPCODE_NAMES: Record<number, string> = {
  0x28: "MARK", 0x2e: "STOP", 0x30: "POP", 0x31: "POP_MARK", 0x32: "DUP", 0x46: "FLOAT", 0x49: "INT", 0x4a: "BININT", 0x4b: "BININT1",
  0x4c: "LONG", 0x4d: "BININT2", 0x4e: "NONE", 0x50: "PERSID", 0x51: "BINPERSID", 0x52: "REDUCE", 0x53: "STRING", 0x54: "BINSTRING",
  0x55: "SHORT_BINSTRING", 0x56: "UNICODE", 0x58: "BINUNICODE", 0x61: "APPEND", 0x62: "BUILD", 0x63: "GLOBAL", 0x64: "DICT", 0x7d: "EMPTY_DICT",
  0x65: "APPENDS", 0x67: "GET", 0x68: "BINGET", 0x69: "INST", 0x6a: "LONG_BINGET", 0x6c: "LIST", 0x5d: "EMPTY_LIST", 0x6f: "OBJ", 0x70: "PUT",
  0x71: "BINPUT", 0x72: "LONG_BINPUT", 0x73: "SETITEM", 0x74: "TUPLE", 0x29: "EMPTY_TUPLE", 0x75: "SETITEMS", 0x47: "BINFLOAT", 0x80: "PROTO",
  0x81: "NEWOBJ", 0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x85: "TUPLE1", 0x86: "TUPLE2", 0x87: "TUPLE3", 0x88: "NEWTRUE", 0x89: "NEWFALSE",
  0x8a: "LONG1", 0x8b: "LONG4", 0x42: "BINBYTES", 0x43: "SHORT_BINBYTES", 0x8c: "SHORT_BINUNICODE", 0x8d: "BINUNICODE8", 0x8e: "BINBYTES8",
  0x8f: "EMPTY_SET", 0x90: "ADDITEMS", 0x91: "FROZENSET", 0x92: "NEWOBJ_EX", 0x93: "STACK_GLOBAL", 0x94: "MEMOIZE", 0x95: "FRAME",
  0x96: "BYTEARRAY8", 0x97: "NEXT_BUFFER", 0x98: "READONLY_BUFFER",
};

const utf8 = new TextDecoder("utf-8", { fatal: true });

function latin1(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 8192) s += String.fromCharCode(...bytes.subarray(i, i + 8192));
  return s;
}

/** Python's repr-style escapes of STRING and the raw-unicode-escape of UNICODE (protocol 0). */
function unescapePython(text: string, raw: boolean): string {
  if (!text.includes("\\")) return text;
  return text.replace(/\\(u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|x[0-9a-fA-F]{2}|[0-7]{1,3}|.)/gs, (whole, esc: string) => {
    const c = esc[0]!;
    if (c === "u" || c === "U") return String.fromCodePoint(Math.min(parseInt(esc.slice(1), 16), 0x10ffff));
    if (raw) return whole;
    if (c === "x") return String.fromCharCode(parseInt(esc.slice(1), 16));
    if (/[0-7]/.test(c)) return String.fromCharCode(parseInt(esc, 8) & 0xff);
    const simple: Record<string, string> = { n: "\n", r: "\r", t: "\t", "\\": "\\", "'": "'", '"': '"', a: "\x07", b: "\b", f: "\f", v: "\v", "\n": "" };
    return simple[c] ?? whole;
  });
}

function isHashable(key: PyValue): boolean {
  return !(Array.isArray(key) || key instanceof PyDict || (key instanceof PySet && !key.frozen) || key instanceof PyRecord);
}

/**
 * Runs one pickle (protocols 0–5) from `start` to its STOP and returns the data it builds.
 * Iterative (no recursion), memo values are shared by reference (never copied), and nothing is
 * ever imported or called: globals resolve against the allowlist, allowlisted constructors
 * build plain data, everything else becomes a recorded violation and an inert placeholder.
 */
export function runPickle(bytes: Uint8Array, start: number, options: PickleRunOptions): PickleRunResult {
  const limits = { ...DEFAULT_PICKLE_LIMITS, ...options.limits };
  const { file, record } = options;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const globals: GlobalUse[] = options.globalsSink ?? [];
  const violations: PickleViolation[] = [];
  const violationOf = new Map<object, PickleViolation>();
  const budget: AllocationBudget = options.allocationBudget ?? { used: 0 };
  let pos = start;
  let opStart = start;
  let opName = "";

  const error = (code: string, problem: string): PickleError => new PickleError(code, `${file}: ${record} byte ${opStart}: ${problem}`, { file });
  const need = (n: number): void => {
    if (pos + n > bytes.length) throw new PickleTruncatedError("PICKLE_TRUNCATED", `${file}: ${record} ends inside ${opName} at byte ${opStart} (pickle truncated)`, { file });
  };
  const take = (n: number): Uint8Array => {
    need(n);
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const readLine = (): string => {
    const nl = bytes.indexOf(0x0a, pos);
    if (nl < 0) need(bytes.length - pos + 1);
    const line = latin1(bytes.subarray(pos, nl));
    pos = nl + 1;
    return line;
  };
  const u32 = (): number => {
    need(4);
    const v = view.getUint32(pos, true);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = view.getBigUint64(pos, true);
    pos += 8;
    if (v > BigInt(bytes.length)) throw error("PICKLE_BAD_LENGTH", `${opName} declares ${v} bytes, more than the ${bytes.length}-byte pickle`);
    return Number(v);
  };
  const charge = (bytes: number): void => {
    budget.used += bytes;
    if (budget.used > limits.maxAllocationBytes) {
      throw error("PICKLE_LIMIT", `the pickle builds more than ${limits.maxAllocationBytes} bytes of objects (maxAllocationBytes resource limit)`);
    }
  };
  /** Charges a freshly built object with `slots` references, and returns it. */
  const built = <T extends PyValue>(value: T, slots = 0): T => {
    charge(COST.object + slots * COST.slot);
    return value;
  };
  const text = (s: string): string => {
    charge(COST.string + 2 * s.length);
    return s;
  };
  const binary = (b: Uint8Array): Uint8Array => {
    charge(COST.object + b.byteLength);
    return b;
  };
  const push = (v: PyValue): void => {
    if (stack.length >= limits.maxStack) throw error("PICKLE_LIMIT", `stack exceeds ${limits.maxStack} values (resource limit)`);
    stack.push(v);
  };
  const pop = (): PyValue => {
    const floor = marks.length > 0 ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor) throw error("PICKLE_STACK_UNDERFLOW", `${opName} on an empty stack`);
    return stack.pop()!;
  };
  const top = (): PyValue => {
    const floor = marks.length > 0 ? marks[marks.length - 1]! : 0;
    if (stack.length <= floor) throw error("PICKLE_STACK_UNDERFLOW", `${opName} on an empty stack`);
    return stack[stack.length - 1]!;
  };
  const popMark = (): PyValue[] => {
    const mark = marks.pop();
    if (mark === undefined) throw error("PICKLE_NO_MARK", `${opName} without a MARK`);
    return stack.splice(mark);
  };
  const memoPut = (index: number, value: PyValue): void => {
    if (!memo.has(index) && memo.size >= limits.maxMemo) throw error("PICKLE_LIMIT", `memo exceeds ${limits.maxMemo} entries (resource limit)`);
    charge(COST.memoEntry);
    memo.set(index, value);
  };
  const memoGet = (index: number): PyValue => {
    if (!memo.has(index)) throw error("PICKLE_BAD_MEMO", `${opName} of memo entry ${index}, which was never stored`);
    return memo.get(index)!;
  };
  const site = (): CallSite => ({ file, record, offset: opStart, opcode: opName });
  const resolveGlobal = (module: string, name: string): PyGlobal => {
    const { verdict } = classifyGlobal(module, name);
    charge(COST.globalUse + 2 * (module.length + name.length));
    const g = new PyGlobal(module, name, verdict);
    const use: GlobalUse = { module, name, verdict, opcode: opName, offset: opStart, record };
    globals.push(use);
    if (verdict !== "allowed") {
      // The same object is the audit's entry and the violation, so where it is stored shows in both.
      const v = use as PickleViolation;
      violations.push(v);
      violationOf.set(g, v);
    }
    return g;
  };
  const call = (callee: PyValue, args: readonly PyValue[]): PyValue => {
    charge(COST.object + args.length * COST.slot);
    const result = buildFromGlobal(callee, args, site());
    if (result instanceof PyOpaque && result !== callee) {
      const origin = violationOf.get(callee as object);
      if (origin) violationOf.set(result, origin);
    }
    return result;
  };
  const instantiate = (cls: PyValue, args: readonly PyValue[]): PyValue => {
    charge(COST.object + args.length * COST.slot);
    const result = instantiateClass(cls, args, site());
    if (result instanceof PyOpaque && result !== cls) {
      const origin = violationOf.get(cls as object);
      if (origin) violationOf.set(result, origin);
    }
    return result;
  };
  const setItem = (target: PyValue, key: PyValue, value: PyValue): void => {
    if (!isHashable(key)) throw error("PICKLE_UNHASHABLE", `dict key of type ${pyTypeName(key)} is unhashable`);
    if (typeof key === "string" && value !== null && typeof value === "object") {
      const v = violationOf.get(value);
      if (v && v.placedAt === undefined) v.placedAt = key;
    }
    charge(COST.mapEntry);
    if (target instanceof PyDict) target.entries.set(key, value);
    else if (target instanceof PyRecord) target.dictItems.set(key, value);
    else if (!(target instanceof PyOpaque)) throw error("PICKLE_BAD_TARGET", `${opName} on a ${pyTypeName(target)}, not a dict`);
  };
  const append = (target: PyValue, items: readonly PyValue[]): void => {
    charge(items.length * COST.slot);
    if (Array.isArray(target)) {
      if (target.length + items.length > limits.maxStack) throw error("PICKLE_LIMIT", `list exceeds ${limits.maxStack} items (resource limit)`);
      for (const item of items) target.push(item);
    } else if (target instanceof PyRecord) {
      for (const item of items) target.listItems.push(item);
    }
    else if (!(target instanceof PyOpaque)) throw error("PICKLE_BAD_TARGET", `${opName} on a ${pyTypeName(target)}, not a list`);
  };
  const parseIntText = (text: string): number | bigint => {
    const t = text.trim().replace(/L$/, "");
    if (t.length > limits.maxIntBytes * 3) throw error("PICKLE_LIMIT", `int literal of ${t.length} digits exceeds the limit`);
    if (!/^[+-]?\d+$/.test(t)) throw error("PICKLE_BAD_VALUE", `${opName} holds ${JSON.stringify(t.slice(0, 40))}, not an int`);
    return normalizeInt(BigInt(t));
  };
  const longBytes = (n: number): number | bigint => {
    if (n > limits.maxIntBytes) throw error("PICKLE_LIMIT", `${opName} of ${n} bytes exceeds the ${limits.maxIntBytes}-byte int limit`);
    const data = take(n);
    if (n === 0) return 0;
    let v = 0n;
    for (let i = n - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[i]!);
    if (data[n - 1]! & 0x80) v -= 1n << BigInt(8 * n);
    charge(COST.string + n);
    return normalizeInt(v);
  };
  const decodeUtf8 = (data: Uint8Array): string => {
    let decoded: string;
    try {
      decoded = utf8.decode(data);
    } catch {
      throw error("PICKLE_BAD_VALUE", `${opName} holds invalid UTF-8`);
    }
    return text(decoded);
  };
  const persistent = (pid: PyValue): PyValue => {
    if (!options.persistentLoad) throw error("PICKLE_PERSISTENT_ID", `${opName} in a pickle that has no storages`);
    return options.persistentLoad(pid, site());
  };

  for (;;) {
    opStart = pos;
    need(1);
    const op = bytes[pos++]!;
    opName = OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, "0")}`;
    switch (op) {
      case 0x80: { // PROTO
        const version = take(1)[0]!;
        if (version > 5) throw error("PICKLE_BAD_PROTOCOL", `pickle protocol ${version} is not supported (0–5)`);
        break;
      }
      case 0x95: // FRAME: framing is a hint for buffered readers; the bytes follow inline.
        u64();
        break;
      case 0x2e: { // STOP
        const value = pop();
        return { value, end: pos, globals, violations };
      }
      case 0x28: // MARK
        if (marks.length >= limits.maxMarks) throw error("PICKLE_LIMIT", `more than ${limits.maxMarks} open MARKs (resource limit)`);
        marks.push(stack.length);
        break;
      case 0x30: // POP: like Python, POP on an empty frame discards the MARK itself
        if (marks.length > 0 && stack.length === marks[marks.length - 1]) marks.pop();
        else pop();
        break;
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: charge(COST.slot); push(top()); break; // DUP
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x49: { // INT
        const text = readLine();
        push(text === "00" ? false : text === "01" ? true : parseIntText(text));
        break;
      }
      case 0x4a: need(4); push(view.getInt32(pos, true)); pos += 4; break; // BININT
      case 0x4b: push(take(1)[0]!); break; // BININT1
      case 0x4d: need(2); push(view.getUint16(pos, true)); pos += 2; break; // BININT2
      case 0x4c: push(parseIntText(readLine())); break; // LONG
      case 0x8a: push(longBytes(take(1)[0]!)); break; // LONG1
      case 0x8b: { // LONG4
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw error("PICKLE_BAD_LENGTH", "LONG4 with a negative length");
        push(longBytes(n));
        break;
      }
      case 0x46: { // FLOAT
        const text = readLine().trim();
        const value = Number(text);
        if (Number.isNaN(value) && !/^[+-]?nan$/i.test(text)) throw error("PICKLE_BAD_VALUE", `FLOAT holds ${JSON.stringify(text.slice(0, 40))}`);
        push(value);
        break;
      }
      case 0x47: need(8); push(view.getFloat64(pos, false)); pos += 8; break; // BINFLOAT
      case 0x53: { // STRING
        const line = readLine();
        const q = line[0];
        if (line.length < 2 || (q !== "'" && q !== '"') || line[line.length - 1] !== q) throw error("PICKLE_BAD_VALUE", "STRING is not quoted");
        push(text(unescapePython(line.slice(1, -1), false)));
        break;
      }
      case 0x54: { // BINSTRING
        need(4);
        const n = view.getInt32(pos, true);
        pos += 4;
        if (n < 0) throw error("PICKLE_BAD_LENGTH", "BINSTRING with a negative length");
        push(text(latin1(take(n))));
        break;
      }
      case 0x55: push(text(latin1(take(take(1)[0]!)))); break; // SHORT_BINSTRING
      case 0x56: push(text(unescapePython(readLine(), true))); break; // UNICODE
      case 0x58: push(decodeUtf8(take(u32()))); break; // BINUNICODE
      case 0x8c: push(decodeUtf8(take(take(1)[0]!))); break; // SHORT_BINUNICODE
      case 0x8d: push(decodeUtf8(take(u64()))); break; // BINUNICODE8
      case 0x42: push(binary(take(u32()).slice())); break; // BINBYTES
      case 0x43: push(binary(take(take(1)[0]!).slice())); break; // SHORT_BINBYTES
      case 0x8e: push(binary(take(u64()).slice())); break; // BINBYTES8
      case 0x96: push(binary(take(u64()).slice())); break; // BYTEARRAY8
      case 0x97: throw error("PICKLE_UNSUPPORTED", "NEXT_BUFFER needs out-of-band buffers, which checkpoints never carry");
      case 0x98: break; // READONLY_BUFFER: a flag on the top value
      case 0x29: push(built(new PyTuple([]))); break; // EMPTY_TUPLE
      case 0x74: { const items = popMark(); push(built(new PyTuple(items), items.length)); break; } // TUPLE
      case 0x85: push(built(new PyTuple([pop()]), 1)); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(built(new PyTuple([a, b]), 2)); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(built(new PyTuple([a, b, c]), 3)); break; } // TUPLE3
      case 0x5d: push(built([])); break; // EMPTY_LIST
      case 0x6c: { const items = popMark(); push(built(items, items.length)); break; } // LIST
      case 0x61: { const item = pop(); append(top(), [item]); break; } // APPEND
      case 0x65: { const items = popMark(); append(top(), items); break; } // APPENDS
      case 0x7d: push(built(new PyDict())); break; // EMPTY_DICT
      case 0x64: { // DICT
        const items = popMark();
        if (items.length % 2) throw error("PICKLE_BAD_VALUE", "DICT with an odd number of items");
        const dict = built(new PyDict());
        for (let i = 0; i < items.length; i += 2) setItem(dict, items[i]!, items[i + 1]!);
        push(dict);
        break;
      }
      case 0x73: { const value = pop(); const key = pop(); setItem(top(), key, value); break; } // SETITEM
      case 0x75: { // SETITEMS
        const items = popMark();
        if (items.length % 2) throw error("PICKLE_BAD_VALUE", "SETITEMS with an odd number of items");
        const target = top();
        for (let i = 0; i < items.length; i += 2) setItem(target, items[i]!, items[i + 1]!);
        break;
      }
      case 0x8f: push(built(new PySet([], false))); break; // EMPTY_SET
      case 0x90: { // ADDITEMS
        const items = popMark();
        const target = top();
        charge(items.length * COST.slot);
        if (target instanceof PySet) for (const item of items) target.items.push(item);
        else if (!(target instanceof PyOpaque)) throw error("PICKLE_BAD_TARGET", `ADDITEMS on a ${pyTypeName(target)}, not a set`);
        break;
      }
      case 0x91: { const items = popMark(); push(built(new PySet(items, true), items.length)); break; } // FROZENSET
      case 0x67: push(memoGet(Number(parseIntText(readLine())))); break; // GET
      case 0x68: push(memoGet(take(1)[0]!)); break; // BINGET
      case 0x6a: push(memoGet(u32())); break; // LONG_BINGET
      case 0x70: memoPut(Number(parseIntText(readLine())), top()); break; // PUT
      case 0x71: memoPut(take(1)[0]!, top()); break; // BINPUT
      case 0x72: memoPut(u32(), top()); break; // LONG_BINPUT
      case 0x94: memoPut(memo.size, top()); break; // MEMOIZE
      case 0x63: { // GLOBAL
        const module = readLine();
        const name = readLine();
        push(resolveGlobal(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== "string" || typeof name !== "string") throw error("PICKLE_BAD_VALUE", `STACK_GLOBAL needs two strings, got ${pyTypeName(module)} and ${pyTypeName(name)}`);
        push(resolveGlobal(module, name));
        break;
      }
      case 0x82: case 0x83: case 0x84: { // EXT1 / EXT2 / EXT4
        need(op === 0x82 ? 1 : op === 0x83 ? 2 : 4);
        const code = op === 0x82 ? bytes[pos]! : op === 0x83 ? view.getUint16(pos, true) : view.getInt32(pos, true);
        pos += op === 0x82 ? 1 : op === 0x83 ? 2 : 4;
        // The extension registry maps codes to arbitrary callables; no code is ever resolved.
        push(resolveGlobal("copyreg._extension_registry", String(code)));
        break;
      }
      case 0x52: { // REDUCE
        const args = pop();
        const callee = pop();
        if (!(args instanceof PyTuple) && !(args instanceof PyOpaque)) throw error("PICKLE_BAD_VALUE", `REDUCE arguments are a ${pyTypeName(args)}, not a tuple`);
        push(call(callee, args instanceof PyTuple ? args.items : []));
        break;
      }
      case 0x69: { // INST
        const module = readLine();
        const name = readLine();
        const args = popMark();
        push(instantiate(resolveGlobal(module, name), args));
        break;
      }
      case 0x6f: { // OBJ
        const items = popMark();
        if (items.length === 0) throw error("PICKLE_STACK_UNDERFLOW", "OBJ without a class");
        push(instantiate(items[0]!, items.slice(1)));
        break;
      }
      case 0x81: { // NEWOBJ
        const args = pop();
        const cls = pop();
        push(instantiate(cls, args instanceof PyTuple ? args.items : []));
        break;
      }
      case 0x92: { // NEWOBJ_EX
        pop(); // kwargs
        const args = pop();
        const cls = pop();
        push(instantiate(cls, args instanceof PyTuple ? args.items : []));
        break;
      }
      case 0x62: { // BUILD
        const state = pop();
        const target = top();
        if (target instanceof PyDict) target.attributes = state;
        else if (target instanceof PyRecord) target.state = state;
        else if (!(target instanceof PyTensor) && !(target instanceof PyOpaque)) throw error("PICKLE_BAD_TARGET", `BUILD on a ${pyTypeName(target)}`);
        break;
      }
      case 0x50: push(persistent(readLine())); break; // PERSID
      case 0x51: push(persistent(pop())); break; // BINPERSID
      default:
        throw error("PICKLE_BAD_OPCODE", `unknown opcode 0x${op.toString(16).padStart(2, "0")} (not a pickle, or corrupt)`);
    }
  }
}
