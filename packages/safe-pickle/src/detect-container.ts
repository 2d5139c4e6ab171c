import { CheckpointFormatError } from "./pickle-errors.js";

export type ContainerKind = "zip" | "pickle";

const PICKLE_FIRST_BYTES = new Set([0x80, 0x28, 0x7d, 0x5d, 0x29, 0x63, 0x4e, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x53, 0x55, 0x56, 0x58, 0x8c, 0x88, 0x89, 0x47, 0x46, 0x54, 0x42, 0x43, 0x95, 0x64, 0x6c, 0x8a]);

/**
 * Decides the container from the first bytes, as torch.load does: `PK\x03\x04` is the zip format,
 * a pickle opcode is the legacy or plain pickle format. Tar (PyTorch ≤ 0.1.10), TorchScript,
 * safetensors, GGUF and anything else are refused with a clear "unsupported format" error.
 */
export function detectContainer(head: Uint8Array, fileSize: number, file: string): ContainerKind {
  const unsupported = (what: string): CheckpointFormatError =>
    new CheckpointFormatError("CHECKPOINT_UNSUPPORTED_FORMAT", `${file}: unsupported format, ${what}`, { file });
  if (fileSize === 0) throw unsupported("the file is empty");
  if (head[0] === 0x50 && head[1] === 0x4b && head[2] === 0x03 && head[3] === 0x04) return "zip";
  if (head.length >= 262 && String.fromCharCode(...head.subarray(257, 262)) === "ustar") {
    throw unsupported("this is the tar checkpoint format of PyTorch 0.1.x, which is not supported");
  }
  if (head[0] === 0x47 && head[1] === 0x47 && head[2] === 0x55 && head[3] === 0x46) throw unsupported("this is a GGUF file, not a torch checkpoint");
  if (head.length >= 9 && head[8] === 0x7b && head[4] === 0 && head[5] === 0 && head[6] === 0 && head[7] === 0) {
    throw unsupported("this looks like a safetensors file already (nothing to convert)");
  }
  if (head[0] === 0x50 && head[1] === 0x4b) throw unsupported("a zip archive that does not start with a local file header");
  if (head[0] !== undefined && PICKLE_FIRST_BYTES.has(head[0])) return "pickle";
  throw unsupported("not a torch zip checkpoint or a pickle");
}
