import { StmergeError } from "@stmerge/core-tensors";

/**
 * The file hashes model sites and UIs use to name a model. Definitions follow CivitAI's scanner
 * (the site every lookup goes to) and A1111:
 * - `sha256`: SHA-256 of the whole file (64 hex, lowercase like hashlib/sha256sum).
 * - `autov1`: SHA-256 of the 64 KiB at offset 1 MiB, first 8 hex; none below 2 MiB (CivitAI stores null there).
 * - `autov2`: first 10 hex of the whole-file SHA-256 (A1111's "Model hash").
 * - `autov3`: SHA-256 of a safetensors file's data after its header, first 12 hex as CivitAI keeps it.
 * - `crc32`: IEEE CRC-32 printed as CivitAI prints it (result bytes little-endian, 8 uppercase hex).
 * - `blake3`: BLAKE3-256 of the whole file (64 hex, lowercase like b3sum).
 */
export const HASH_ALGORITHMS = ["sha256", "autov1", "autov2", "autov3", "crc32", "blake3"] as const;
export type HashAlgorithm = (typeof HASH_ALGORITHMS)[number];

export type FileHashes = { [K in HashAlgorithm]?: string | null };

/** AutoV1 window: 0x10000 bytes at 0x100000 (A1111 legacy `model_hash`, kohya `model_hash`). */
export const AUTOV1_OFFSET = 0x100000;
export const AUTOV1_LENGTH = 0x10000;
/** CivitAI reports no AutoV1 for files under 2 MiB. */
export const AUTOV1_MIN_FILE_SIZE = 0x200000;
/** CivitAI keeps 12 hex of AutoV3. */
export const AUTOV3_LENGTH = 12;
/** CivitAI skips a header length at or above 16 MiB and hashes from offset 8 (non-safetensors files). */
export const AUTOV3_MAX_HEADER = 16 * 1024 * 1024;

export class HashError extends StmergeError {}

export function isHashAlgorithm(name: string): name is HashAlgorithm {
  return (HASH_ALGORITHMS as readonly string[]).includes(name);
}

/** Parses a comma list such as "sha256,crc32" (case-insensitive; "all" means every algorithm). */
export function parseHashAlgorithms(list: string): HashAlgorithm[] {
  const names = list
    .split(",")
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s.length > 0);
  if (names.includes("all")) return [...HASH_ALGORITHMS];
  const out: HashAlgorithm[] = [];
  for (const name of names) {
    if (!isHashAlgorithm(name)) throw new HashError("HASH_UNKNOWN_ALGORITHM", `unknown hash algorithm ${JSON.stringify(name)} (known: ${HASH_ALGORITHMS.join(", ")})`);
    if (!out.includes(name)) out.push(name);
  }
  if (out.length === 0) throw new HashError("HASH_UNKNOWN_ALGORITHM", "no hash algorithm given");
  return out;
}

/** zlib's CRC-32 value as CivitAI prints it: the 4 result bytes little-endian, uppercase hex. */
export function formatCrc32Civitai(crc: number): string {
  const v = crc >>> 0;
  const swapped = (((v & 0xff) << 24) | ((v & 0xff00) << 8) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
  return swapped.toString(16).padStart(8, "0").toUpperCase();
}

/** Converts a CivitAI-printed CRC32 back to zlib's `crc32` hex order (lowercase), for display next to other tools. */
export function civitaiCrc32ToZlib(crc32: string): string {
  const v = Number.parseInt(crc32, 16);
  return formatCrc32Civitai(v).toLowerCase();
}

/**
 * Where AutoV3 starts: after the 8-byte length and the header it gives, except that, like CivitAI,
 * a length at or above 16 MiB (not a safetensors file) starts at 8. Files under 8 bytes have none.
 */
export function autoV3Start(prefix: Uint8Array, fileSize: number): number | undefined {
  if (fileSize < 8 || prefix.byteLength < 8) return undefined;
  const view = new DataView(prefix.buffer, prefix.byteOffset, 8);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength >= BigInt(AUTOV3_MAX_HEADER)) return 8;
  return Math.min(8 + Number(headerLength), fileSize);
}
