import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { chmodSync, linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";

/**
 * A small but real safetensors file: U8 tensors named `names`, `dataBytes` of data split among
 * them, filled from `seed`. Two calls with the same names and sizes share the header byte for
 * byte and differ only in the data, like two fine-tunes of one architecture.
 */
export function safetensorsBytes(names: readonly string[], dataBytes: number, seed: number, metadata?: Record<string, string>): Buffer {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const per = Math.floor(dataBytes / names.length);
  let offset = 0;
  names.forEach((name, i) => {
    const len = i === names.length - 1 ? dataBytes - offset : per;
    header[name] = { dtype: "U8", shape: [len], data_offsets: [offset, offset + len] };
    offset += len;
  });
  let json = JSON.stringify(header);
  json += " ".repeat((8 - (json.length % 8)) % 8);
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, "utf8");
  let x = seed >>> 0 || 1;
  for (let i = 8 + json.length; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

export const CHECKPOINT_KEYS = ["model.diffusion_model.input_blocks.0.0.weight", "first_stage_model.decoder.conv_in.weight", "cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"];
export const LORA_KEYS = ["lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight", "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight", "lora_unet_down_blocks_0_attentions_0_proj_in.alpha"];
export const VAE_KEYS = ["encoder.down.0.block.0.conv1.weight", "decoder.up.0.block.0.conv1.weight", "quant_conv.weight", "post_quant_conv.weight"];

export function writeFile(path: string, bytes: Uint8Array | string, mtimeMs?: number): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  if (mtimeMs !== undefined) execFileSync("touch", ["-d", `@${(mtimeMs / 1000).toFixed(3)}`, path]);
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/**
 * Every file and link below `dir`: a link's target (with `dir` written as `<dir>`), a file's
 * SHA-256 and, for hard links, the first path sharing its inode.
 */
export function snapshotTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const inodes = new Map<string, string>();
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      const rel = relative(dir, p);
      if (st.isDirectory()) walk(p);
      else if (st.isSymbolicLink()) out[rel] = `link → ${readlinkSync(p).replace(dir, "<dir>")}`;
      else {
        const key = `${st.dev}:${st.ino}`;
        const first = inodes.get(key);
        if (!first) inodes.set(key, rel);
        out[rel] = `file ${sha256(readFileSync(p))}${first ? ` (hard link of ${first})` : ""}`;
      }
    }
  };
  walk(dir);
  return out;
}

/** What every path shows (following links; dot-files such as temp names only with `hidden`). */
export function contentByPath(dir: string, hidden = false): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) walk(p);
      else if (hidden || !name.startsWith(".")) out[relative(dir, p)] = statSync(p, { throwIfNoEntry: false }) ? sha256(readFileSync(p)) : "broken";
    }
  };
  walk(dir);
  return out;
}

/** Makes a folder refuse changes even for root (chattr +i), else by permission bits. */
export function lockFolder(dir: string): void {
  if (process.getuid?.() === 0) execFileSync("chattr", ["+i", dir]);
  else chmodSync(dir, 0o555);
}

export function unlockFolder(dir: string): void {
  if (process.getuid?.() === 0) execFileSync("chattr", ["-i", dir]);
  else chmodSync(dir, 0o755);
}

export const DAY = 86_400_000;
export const T0 = Date.UTC(2025, 0, 1);

export interface UiTree {
  readonly base: string;
  readonly a1111: string;
  readonly comfy: string;
  readonly plain: string;
  readonly outside: string;
  /** Bytes of the checkpoint held three times (A1111, ComfyUI, plain). */
  readonly sdxl: Buffer;
}

/**
 * An A1111 install and a ComfyUI install side by side plus a plain folder: one checkpoint in all
 * three (with sidecars in A1111), a same-size checkpoint with other weights, a LoRA already
 * symlinked, a VAE already hard-linked, a broken link, a link out of the roots, a download in
 * progress, and a LoRA in a plain folder that only its tensor names identify.
 */
export function buildUiTree(base: string): UiTree {
  const a1111 = join(base, "a1111");
  const comfy = join(base, "comfy");
  const plain = join(base, "plain");
  const outside = join(base, "outside");
  const sdxl = safetensorsBytes(CHECKPOINT_KEYS, 96 * 1024, 1);
  writeFile(join(a1111, "models/Stable-diffusion/sdxl_base.safetensors"), sdxl, T0);
  writeFile(join(a1111, "models/Stable-diffusion/sdxl_base.preview.png"), "png", T0);
  writeFile(join(a1111, "models/Stable-diffusion/sdxl_base.civitai.info"), "{}", T0);
  writeFile(join(a1111, "models/Stable-diffusion/unique.safetensors"), safetensorsBytes(CHECKPOINT_KEYS, 80 * 1024, 5), T0);
  writeFile(join(a1111, "models/Lora/style.safetensors"), safetensorsBytes(LORA_KEYS, 3000, 2), T0);
  writeFile(join(a1111, "models/VAE/vae.safetensors"), safetensorsBytes(VAE_KEYS, 5000, 3), T0);
  writeFile(join(a1111, "embeddings/emb.pt"), "PK\u0003\u0004 embedding", T0);
  writeFile(join(comfy, "models/checkpoints/sdxl_base.safetensors"), sdxl, T0 + 2 * DAY);
  writeFile(join(comfy, "models/checkpoints/other.safetensors"), safetensorsBytes(CHECKPOINT_KEYS, 96 * 1024, 4), T0);
  mkdirSync(join(comfy, "models/loras"), { recursive: true });
  mkdirSync(join(comfy, "models/vae"), { recursive: true });
  symlinkSync("../../../a1111/models/Lora/style.safetensors", join(comfy, "models/loras/style.safetensors"));
  linkSync(join(a1111, "models/VAE/vae.safetensors"), join(comfy, "models/vae/vae.safetensors"));
  symlinkSync("missing.safetensors", join(comfy, "models/checkpoints/broken.safetensors"));
  writeFile(join(outside, "x.safetensors"), sdxl);
  symlinkSync(join(outside, "x.safetensors"), join(comfy, "models/checkpoints/outside.safetensors"));
  writeFile(join(comfy, "models/checkpoints/dl.safetensors.part"), "partial");
  writeFile(join(plain, "mixed/sniffme.safetensors"), safetensorsBytes(LORA_KEYS, 2000, 7), T0);
  writeFile(join(plain, "mixed/sdxl copy.safetensors"), sdxl, T0 + DAY);
  return { base, a1111, comfy, plain, outside, sdxl };
}
