import { CheckpointFormatError } from "./pickle-errors.js";

export type ContainerKind = "zip" | "pickle";

const PICKLE_FIRST_BYTES = new Set([0x80, 0x28, 0x7d, 0x5d, 0x29, 0x63, 0x4e, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x53, 0x55, 0x56, 0x58, 0x8c, 0x88, 0x89, 0x47, 0x46, 0x54, 0x42, 0x43, 0x95, 0x64, 0x6c, 0x8a]);

/** Python's `int(text, 8)` after tarfile's `nts` + `strip()`: optional sign and `0o`, digits with single underscores. */
const OCTAL_FIELD = /^[+-]?(0[oO]_?)?[0-7](_?[0-7])*$/;

/**
 * True when the first 512 bytes pass the test Python's `tarfile` (which torch.load tries first for
 * any non-zip file) applies to a header: not all zeros, and the checksum field (octal text, or
 * base-256) equals the unsigned or signed byte sum with that field read as spaces. No `ustar`
 * magic is needed: old-style (v7) headers pass too.
 */
export function isTarHeader(head: Uint8Array): boolean {
  if (head.length < 512) return false;
  const block = head.subarray(0, 512);
  if (block.every((b) => b === 0)) return false;
  const field = block.subarray(148, 156);
  let checksum: number;
  if (field[0] === 0x80 || field[0] === 0xff) {
    let n = 0;
    for (let i = 1; i < 8; i++) n = n * 256 + field[i]!;
    checksum = field[0] === 0xff ? n - 2 ** 56 : n;
  } else {
    const nul = field.indexOf(0);
    const text = String.fromCharCode(...field.subarray(0, nul < 0 ? 8 : nul)).replace(/^[\s\x1c-\x1f\x85\xa0]+|[\s\x1c-\x1f\x85\xa0]+$/g, "");
    if (text === "") checksum = 0;
    else if (!OCTAL_FIELD.test(text)) return false;
    else checksum = parseInt(text.replace(/_/g, "").replace(/0[oO]/, ""), 8);
  }
  let unsigned = 256;
  let signed = 256;
  for (let i = 0; i < 512; i++) {
    if (i >= 148 && i < 156) continue;
    const b = block[i]!;
    unsigned += b;
    signed += b > 127 ? b - 256 : b;
  }
  return checksum === unsigned || checksum === signed;
}

/**
 * Decides the container from the first bytes, as torch.load does: `PK\x03\x04` is the zip format;
 * otherwise a block that Python's tarfile accepts is the tar format of PyTorch 0.1.x (refused:
 * torch would unpickle its members, and the same bytes can also parse as a harmless pickle);
 * otherwise a pickle opcode is the legacy or plain pickle format. TorchScript, safetensors, GGUF
 * and anything else are refused with a clear "unsupported format" error.
 */
export function detectContainer(head: Uint8Array, fileSize: number, file: string): ContainerKind {
  const unsupported = (what: string): CheckpointFormatError =>
    new CheckpointFormatError("CHECKPOINT_UNSUPPORTED_FORMAT", `${file}: unsupported format, ${what}`, { file });
  if (fileSize === 0) throw unsupported("the file is empty");
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return "zip";
  if (isTarHeader(head)) {
    throw unsupported("this is the tar checkpoint format of PyTorch 0.1.x (torch.load would unpickle its members with full Python), which is not supported");
  }
  if (head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) throw unsupported("this is a GGUF file, not a torch checkpoint");
  if (head.length >= 9 && head[8] === 0x7b && head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] === 0) {
    throw unsupported("this looks like a safetensors file already (nothing to convert)");
  }
  if (head[0] === 0x50 && head[1] === 0x4b) throw unsupported("a zip archive that does not start with a local file header");
  if (head[0] !== undefined && PICKLE_FIRST_BYTES.has(head[0])) return "pickle";
  throw unsupported("not a torch zip checkpoint or a pickle");
}
