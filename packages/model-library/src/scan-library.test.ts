import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildUiTree, CHECKPOINT_KEYS, DAY, LORA_KEYS, lockFolder, safetensorsBytes, sha256, T0, unlockFolder, VAE_KEYS, writeFile, type UiTree } from "../test/library-tree.js";
import { findDuplicates } from "./find-duplicates.js";
import { scanLibrary } from "./scan-library.js";

let tree: UiTree;
beforeAll(() => {
  tree = buildUiTree(mkdtempSync(join(tmpdir(), "stmerge-library-scan-")));
});
afterAll(() => rmSync(tree.base, { recursive: true, force: true }));

describe("scanLibrary", () => {
  it("lists models with kinds by folder and by content, links in place, and problems", async () => {
    const scan = await scanLibrary([tree.a1111, tree.comfy, tree.plain]);
    const rel = (p: string) => p.slice(tree.base.length + 1);
    expect(scan.files.map((f) => [rel(f.path), f.kind, f.kindSource, f.type])).toEqual([
      ["a1111/embeddings/emb.pt", "embedding", "folder", "file"],
      ["a1111/models/Lora/style.safetensors", "lora", "folder", "file"],
      ["a1111/models/Stable-diffusion/sdxl_base.safetensors", "checkpoint", "folder", "file"],
      ["a1111/models/Stable-diffusion/unique.safetensors", "checkpoint", "folder", "file"],
      ["a1111/models/VAE/vae.safetensors", "vae", "folder", "file"],
      ["comfy/models/checkpoints/other.safetensors", "checkpoint", "folder", "file"],
      ["comfy/models/checkpoints/sdxl_base.safetensors", "checkpoint", "folder", "file"],
      ["comfy/models/loras/style.safetensors", "lora", "folder", "symlink"],
      ["comfy/models/vae/vae.safetensors", "vae", "folder", "file"],
      ["plain/mixed/sdxl copy.safetensors", "checkpoint", "content", "file"],
      ["plain/mixed/sniffme.safetensors", "lora", "content", "file"],
    ]);
    // The symlinked LoRA and the hard-linked VAE are one stored file each.
    expect(scan.identities).toHaveLength(9);
    const vae = scan.identities.find((i) => i.path.endsWith("a1111/models/VAE/vae.safetensors"))!;
    expect(vae.paths.map((p) => rel(p.path))).toEqual(["a1111/models/VAE/vae.safetensors", "comfy/models/vae/vae.safetensors"]);
    const lora = scan.identities.find((i) => i.path.endsWith("a1111/models/Lora/style.safetensors"))!;
    expect(lora.paths.map((p) => rel(p.path))).toEqual(["a1111/models/Lora/style.safetensors", "comfy/models/loras/style.safetensors"]);
    expect(scan.brokenLinks.map((l) => [rel(l.path), l.target])).toEqual([["comfy/models/checkpoints/broken.safetensors", "missing.safetensors"]]);
    expect(scan.escapingLinks.map((l) => rel(l.path))).toEqual(["comfy/models/checkpoints/outside.safetensors"]);
    expect(scan.partialDownloads.map(rel)).toEqual(["comfy/models/checkpoints/dl.safetensors.part"]);
    expect(scan.files.find((f) => f.path.endsWith("a1111/models/Stable-diffusion/sdxl_base.safetensors"))!.sidecars).toEqual(["sdxl_base.civitai.info", "sdxl_base.preview.png"]);
    expect(scan.layouts.map((l) => l.kinds)).toEqual([["a1111"], ["comfyui"], ["plain"]]);
    expect(scan.byKind.checkpoint).toEqual({ files: 5, bytes: 4 * tree.sdxl.length + scan.identities.find((i) => i.path.endsWith("unique.safetensors"))!.size });
    expect(scan.byKind.lora.files).toBe(2);
  });

  it("SwarmUI, Fooocus and InvokeAI installs: layouts, kinds by their folders, duplicates across them", async () => {
    const base = mkdtempSync(join(tmpdir(), "stmerge-library-uis-"));
    try {
      const swarm = join(base, "SwarmUI");
      const fooocus = join(base, "Fooocus");
      const invoke = join(base, "invokeai");
      const sdxl = safetensorsBytes(CHECKPOINT_KEYS, 40 * 1024, 11);
      const lora = safetensorsBytes(LORA_KEYS, 3000, 12);
      writeFile(join(swarm, "Models/Stable-Diffusion/OfficialStableDiffusion/sdxl.safetensors"), sdxl, T0);
      writeFile(join(swarm, "Models/Lora/detail.safetensors"), lora, T0);
      writeFile(join(swarm, "Models/VAE/sdxl_vae.safetensors"), safetensorsBytes(VAE_KEYS, 2000, 13), T0);
      writeFile(join(swarm, "Models/Embeddings/neg.pt"), "PK\u0003\u0004 embedding", T0);
      writeFile(join(swarm, "Data/Settings.fds"), "Paths:\n  ModelRoot: Models\n");
      writeFile(join(fooocus, "models/checkpoints/sdxl.safetensors"), sdxl, T0 + DAY);
      writeFile(join(fooocus, "models/loras/detail.safetensors"), lora, T0 + DAY);
      writeFile(join(fooocus, "models/inpaint/inpaint_v26.fooocus.patch"), "patch");
      writeFile(join(fooocus, "models/upscale_models/fooocus_upscaler_s409985e5.bin"), "upscaler", T0);
      writeFile(join(fooocus, "models/prompt_expansion/fooocus_expansion/pytorch_model.bin"), "gpt2", T0);
      writeFile(join(invoke, "models/sdxl/main/sdxl.safetensors"), sdxl, T0 + 2 * DAY);
      writeFile(join(invoke, "models/sdxl/lora/detail.safetensors"), lora, T0 + 2 * DAY);
      writeFile(join(invoke, "models/sd-1/embedding/easyneg.safetensors"), safetensorsBytes(["emb_params"], 3072, 14), T0);
      writeFile(join(invoke, "models/any/clip_vision/model.safetensors"), safetensorsBytes(["vision_model.embeddings.patch_embedding.weight"], 2048, 15), T0);
      writeFile(join(invoke, "invokeai.yaml"), "schema_version: 4.0.2\n");
      const scan = await scanLibrary([swarm, fooocus, invoke]);
      expect(scan.layouts.map((l) => [l.kinds, l.modelsDir])).toEqual([
        [["swarmui"], join(swarm, "Models")],
        [["fooocus"], join(fooocus, "models")],
        [["invokeai"], join(invoke, "models")],
      ]);
      const rel = (p: string) => p.slice(base.length + 1);
      expect(scan.files.map((f) => [rel(f.path), f.kind, f.kindSource])).toEqual([
        ["Fooocus/models/checkpoints/sdxl.safetensors", "checkpoint", "folder"],
        ["Fooocus/models/loras/detail.safetensors", "lora", "folder"],
        ["Fooocus/models/prompt_expansion/fooocus_expansion/pytorch_model.bin", "other", "none"],
        ["Fooocus/models/upscale_models/fooocus_upscaler_s409985e5.bin", "upscaler", "folder"],
        ["SwarmUI/Models/Embeddings/neg.pt", "embedding", "folder"],
        ["SwarmUI/Models/Lora/detail.safetensors", "lora", "folder"],
        ["SwarmUI/Models/Stable-Diffusion/OfficialStableDiffusion/sdxl.safetensors", "checkpoint", "folder"],
        ["SwarmUI/Models/VAE/sdxl_vae.safetensors", "vae", "folder"],
        ["invokeai/models/any/clip_vision/model.safetensors", "clip-vision", "folder"],
        ["invokeai/models/sd-1/embedding/easyneg.safetensors", "embedding", "folder"],
        ["invokeai/models/sdxl/lora/detail.safetensors", "lora", "folder"],
        ["invokeai/models/sdxl/main/sdxl.safetensors", "checkpoint", "folder"],
      ]);
      // The same checkpoint and LoRA in all three are two duplicate groups of three.
      const found = await findDuplicates(scan);
      expect(found.groups.map((g) => g.identities.map((f) => rel(f.path)).sort())).toEqual([
        ["Fooocus/models/checkpoints/sdxl.safetensors", "SwarmUI/Models/Stable-Diffusion/OfficialStableDiffusion/sdxl.safetensors", "invokeai/models/sdxl/main/sdxl.safetensors"],
        ["Fooocus/models/loras/detail.safetensors", "SwarmUI/Models/Lora/detail.safetensors", "invokeai/models/sdxl/lora/detail.safetensors"],
      ]);
      expect(found.groups.map((g) => g.sha256)).toEqual([sha256(sdxl), sha256(lora)]);
    } finally {
      rmSync(base, { recursive: true, force: true });
    }
  });

  it("sniff 'none' leaves plain-folder files unknown and reads no header", async () => {
    const scan = await scanLibrary([tree.plain], { sniff: "none" });
    expect(scan.files.map((f) => [f.kind, f.kindSource])).toEqual([
      ["other", "none"],
      ["other", "none"],
    ]);
  });

  it("a root inside another root is walked once; a missing root is one clear error", async () => {
    const scan = await scanLibrary([tree.base, tree.a1111]);
    expect(new Set(scan.files.map((f) => f.path)).size).toBe(scan.files.length);
    await expect(scanLibrary([join(tree.base, "nope")])).rejects.toMatchObject({ code: "LIBRARY_ROOT_NOT_FOUND", message: `${join(tree.base, "nope")}: no such folder` });
  });

  it.skipIf(process.platform === "win32")("reports an unreadable folder and goes on", async () => {
    const dir = join(tree.a1111, "models/Lora");
    lockFolder(dir);
    try {
      // chattr +i (root) blocks changes, not reads; permission bits (non-root) block reads too.
      const scan = await scanLibrary([tree.a1111]);
      if (process.getuid?.() === 0) expect(scan.files.some((f) => f.path.endsWith("style.safetensors"))).toBe(true);
      else expect(scan.unreadable).toEqual([{ path: dir, reason: "permission denied" }]);
    } finally {
      unlockFolder(dir);
    }
  });
});
