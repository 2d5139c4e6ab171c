/** What one pass over a safetensors header's JSON text finds that `JSON.parse` hides. */
export interface HeaderJsonScan {
  /** Keys of the top-level object in order, duplicates included (`JSON.parse` keeps only the last). */
  readonly keys: string[];
  /** Deepest nesting of objects/arrays (the top-level object is 1). */
  readonly depth: number;
  /** The first number in a tensor's `shape` or `data_offsets` written other than as a plain integer (`1.0`, `1e3`, `-0`). */
  readonly nonInteger: { readonly tensor: string; readonly field: string; readonly token: string } | undefined;
}

const INTEGER = /^(0|[1-9][0-9]*)$/;
const INTEGER_FIELDS = new Set(["shape", "data_offsets"]);

interface Frame {
  readonly object: boolean;
  expectKey: boolean;
  key: string | undefined;
}

/**
 * Scans valid JSON text (call after `JSON.parse` succeeded, or to stop early at `maxDepth`)
 * without recursion: the top-level keys (the reference implementation refuses duplicates),
 * the nesting depth (stops counting past `maxDepth`), and numbers of shapes and offsets that
 * are not integers as written (the reference reads them as u64/usize and refuses `1.0`).
 */
export function scanHeaderJson(text: string, maxDepth = Number.POSITIVE_INFINITY): HeaderJsonScan {
  const keys: string[] = [];
  const stack: Frame[] = [];
  let depth = 0;
  let nonInteger: HeaderJsonScan["nonInteger"];
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < n) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i += 2;
        else if (d === 0x22) break;
        else i++;
      }
      const top = stack[stack.length - 1];
      if (top?.object && top.expectKey) {
        // Only the names of tensors (depth 1) and of their fields (depth 2) are needed.
        const key = stack.length <= 2 ? (JSON.parse(text.slice(start, i + 1)) as string) : "";
        if (stack.length === 1) keys.push(key);
        top.key = key;
        top.expectKey = false;
      }
      i++;
      continue;
    }
    if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      stack.push({ object: c === 0x7b, expectKey: c === 0x7b, key: undefined });
      if (stack.length > depth) depth = stack.length;
      if (depth > maxDepth) break;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop();
    } else if (c === 0x2c /* , */) {
      const top = stack[stack.length - 1];
      if (top?.object) top.expectKey = true;
    } else if (c === 0x2d /* - */ || (c >= 0x30 && c <= 0x39)) {
      const start = i;
      while (i < n && /[-+0-9.eE]/.test(text[i]!)) i++;
      const token = text.slice(start, i);
      const field = stack[1]?.key;
      if (!nonInteger && stack.length === 3 && !stack[2]!.object && field !== undefined && INTEGER_FIELDS.has(field) && stack[0]!.key !== "__metadata__" && !INTEGER.test(token)) {
        nonInteger = { tensor: stack[0]!.key ?? "", field, token };
      }
      continue;
    }
    i++;
  }
  return { keys, depth, nonInteger };
}

/**
 * Lists the keys of a JSON text's top-level object in order, duplicates included.
 * `JSON.parse` keeps only the last of two equal keys; the safetensors reference
 * implementation refuses such headers, so we must see every key.
 * The text must already be valid JSON (call after `JSON.parse` succeeded).
 */
export function jsonTopLevelKeys(text: string): string[] {
  return scanHeaderJson(text).keys;
}
