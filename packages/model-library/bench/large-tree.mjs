// A 100,000-file WebUI tree for the scan test and benchmark: an A1111 and a ComfyUI install with
// 100 folders of model files. Most files are empty (never read: zero-length files are no
// duplicates); `pairs` small files are held by both installs (one duplicate pair per size),
// `unique` files have sizes of their own (never read), and `bigPairs` pairs of `bigBytes`-byte
// random files are duplicated across both (full SHA-256, then the metadata cache).
import { randomFillSync } from "node:crypto";
import { closeSync, mkdirSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";

export const LARGE_TREE_FOLDERS = [
  ["a1111/models/Stable-diffusion", "comfy/models/checkpoints"],
  ["a1111/models/Lora", "comfy/models/loras"],
  ["a1111/models/VAE", "comfy/models/vae"],
  ["a1111/models/ESRGAN", "comfy/models/upscale_models"],
  ["a1111/models/ControlNet", "comfy/models/controlnet"],
];

/** Builds the tree under `base`; returns what a correct scan must find. */
export function makeLargeTree(base, { files = 100_000, pairs = 500, unique = 200, bigPairs = 0, bigBytes = 0 } = {}) {
  const dirs = [];
  for (let i = 0; i < 100; i++) {
    const [a, c] = LARGE_TREE_FOLDERS[i % LARGE_TREE_FOLDERS.length];
    dirs.push(join(base, i % 2 === 0 ? a : c, `set${String(i).padStart(3, "0")}`));
  }
  for (const d of dirs) mkdirSync(d, { recursive: true });
  let written = 0;
  let wasted = 0;
  const put = (dir, name, bytes) => {
    writeFileSync(join(dir, name), bytes);
    written++;
  };
  // Duplicate pairs: the same bytes in an A1111 folder and a ComfyUI folder, a size per pair.
  for (let i = 0; i < pairs; i++) {
    const bytes = Buffer.alloc(100 + i, i % 251);
    bytes.write(`dup-${i}`, 0);
    put(dirs[(2 * i) % 100], `dup-${i}.safetensors`, bytes);
    put(dirs[(2 * i + 1) % 100], `dup-${i}.safetensors`, bytes);
    wasted += bytes.length;
  }
  for (let i = 0; i < unique; i++) put(dirs[i % 100], `unique-${i}.safetensors`, Buffer.alloc(100_000 + i, 1));
  const chunk = Buffer.alloc(1 << 20);
  for (let i = 0; i < bigPairs; i++) {
    const paths = [join(dirs[(2 * i) % 100], `big-${i}.safetensors`), join(dirs[(2 * i + 1) % 100], `big-${i}.safetensors`)];
    const fds = paths.map((p) => openSync(p, "w"));
    for (let off = 0; off < bigBytes; off += chunk.length) {
      randomFillSync(chunk);
      const n = Math.min(chunk.length, bigBytes - off);
      for (const fd of fds) writeSync(fd, chunk, 0, n);
    }
    for (const fd of fds) closeSync(fd);
    written += 2;
    wasted += bigBytes;
  }
  for (let i = 0; written < files; i++) {
    closeSync(openSync(join(dirs[i % 100], `empty-${i}.safetensors`), "w"));
    written++;
  }
  return { files: written, groups: pairs + bigPairs, sameSizeFiles: 2 * (pairs + bigPairs), wastedBytes: wasted };
}
