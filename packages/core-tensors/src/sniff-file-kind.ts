import { readFully } from "./read-fully.js";
import { openFileForRead } from "./open-file-for-read.js";
import { MAX_SAFETENSORS_HEADER_BYTES } from "./parse-safetensors-header.js";

export type SniffedKind = "safetensors" | "zip" | "pickle" | "gguf" | "tar" | "html" | "json" | "text" | "empty" | "unknown";

export interface SniffedFile {
  readonly kind: SniffedKind;
  /** What the file looks like, for "not a safetensors file (looks like …)". */
  readonly looksLike: string;
}

/** Bytes `sniffFileKind` wants to see (a tar header's magic sits at 257). */
export const SNIFF_BYTES = 512;

const LOOKS_LIKE: Readonly<Record<SniffedKind, string>> = {
  safetensors: "a safetensors file",
  zip: "a zip archive, e.g. a PyTorch .ckpt/.pt checkpoint; `stmerge convert` turns one into safetensors",
  pickle: "a pickle, e.g. a legacy PyTorch checkpoint; `stmerge convert` turns one into safetensors",
  gguf: "a GGUF file",
  tar: "a tar archive",
  html: "an HTML page; the download probably saved a web page instead of the model",
  json: "a JSON file",
  text: "a text file",
  empty: "an empty file",
  unknown: "an unknown binary format",
};

function isText(head: Uint8Array): boolean {
  const sample = head.subarray(0, 256);
  if (sample.byteLength === 0) return false;
  let printable = 0;
  for (const b of sample) if (b === 9 || b === 10 || b === 13 || (b >= 32 && b < 127) || b >= 0x80) printable++;
  return !sample.includes(0) && printable / sample.byteLength > 0.95;
}

/**
 * What a file is, from its first bytes (up to `SNIFF_BYTES`) and its size: the one sniffer behind
 * every "not a safetensors file (looks like …)" and "already a safetensors file" message.
 */
export function sniffFileKind(head: Uint8Array, fileSize: number): SniffedFile {
  const kind = ((): SniffedKind => {
    if (fileSize === 0) return "empty";
    // A u64 header length within the reader's limit, then "{": safetensors-shaped, even when cut
    // short (a truncated download is a broken safetensors file, said as such by the reader).
    if (head.byteLength >= 9 && head[8] === 0x7b) {
      const n = new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
      if (n >= 2n && n <= BigInt(MAX_SAFETENSORS_HEADER_BYTES)) return "safetensors";
    }
    if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return "zip";
    if (head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) return "gguf";
    if (head.byteLength >= 262 && String.fromCharCode(...head.subarray(257, 262)) === "ustar") return "tar";
    // Binary pickles start with PROTO (0x80) and a protocol number; torch's legacy format too.
    if (head[0] === 0x80 && head[1] !== undefined && head[1] >= 2 && head[1] <= 5) return "pickle";
    if (isText(head)) {
      const text = new TextDecoder().decode(head.subarray(0, 256)).replace(/^\uFEFF/, "").trimStart().toLowerCase();
      if (text.startsWith("<!doctype html") || text.startsWith("<html") || text.startsWith("<head") || (text.startsWith("<") && text.includes("<html"))) return "html";
      if (text.startsWith("{") || text.startsWith("[")) return "json";
      return "text";
    }
    return "unknown";
  })();
  return { kind, looksLike: LOOKS_LIKE[kind] };
}

/** `sniffFileKind` of a file on disk (reads its first `SNIFF_BYTES`). */
export async function sniffFile(path: string): Promise<SniffedFile> {
  const { handle, stats } = await openFileForRead(path);
  try {
    const head = new Uint8Array(Math.min(SNIFF_BYTES, stats.size));
    await readFully(handle, head, 0, head.byteLength, 0, path);
    return sniffFileKind(head, stats.size);
  } finally {
    await handle.close();
  }
}
