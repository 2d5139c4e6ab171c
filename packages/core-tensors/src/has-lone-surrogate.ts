const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * Whether a string holds a UTF-16 surrogate without its pair: not encodable as UTF-8, refused in
 * names by the safetensors reference (and by us on read and write). Protocol-0 pickles and JSON
 * `\u` escapes can produce them. (`String.prototype.isWellFormed` is ES2024, beyond our lib.)
 */
export function hasLoneSurrogate(value: string): boolean {
  return LONE_SURROGATE.test(value);
}
