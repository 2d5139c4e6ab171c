import { createHash } from "node:crypto";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

const scratch: string[] = [];
let dir: string;
let a1111: string;
let comfy: string;
const model = Buffer.alloc(100_000);
for (let i = 0; i < model.length; i++) model[i] = (i * 7919) % 251;

function put(path: string, bytes: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
}

function sha(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-cli-library-"));
  scratch.push(dir);
  a1111 = join(dir, "webui");
  comfy = join(dir, "ComfyUI");
  put(join(a1111, "models/Stable-diffusion/sdxl.safetensors"), model);
  put(join(a1111, "models/Stable-diffusion/sdxl.preview.png"), "png");
  put(join(a1111, "models/Lora/style.safetensors"), "lora bytes");
  put(join(comfy, "models/checkpoints/sdxl.safetensors"), model);
  put(join(comfy, "models/loras/.keep"), "");
  symlinkSync("../../../webui/models/Lora/style.safetensors", join(comfy, "models/loras/style.safetensors"));
  symlinkSync("gone.safetensors", join(comfy, "models/checkpoints/broken.safetensors"));
});
afterAll(() => {
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

async function run(args: string[]) {
  const io = memoryIo({ env: { STMERGE_CACHE: join(dir, "cache.json"), STMERGE_LIBRARY_JOURNALS: join(dir, "journals") }, cwd: dir });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

describe("stmerge library", () => {
  it("scan reports layouts, kinds, the duplicate with its wasted bytes, links in place and broken ones", async () => {
    const r = await run(["library", "scan", "webui", "ComfyUI", "--json"]);
    expect(r.code, r.err).toBe(0);
    const report = JSON.parse(r.out) as { layouts: { kinds: string[] }[]; duplicates: { paths: string[]; wastedBytes: number }[]; wastedBytes: number; linked: { path: string }[]; brokenLinks: { path: string }[]; byKind: Record<string, { files: number }> };
    expect(report.layouts.map((l) => l.kinds)).toEqual([["a1111"], ["comfyui"]]);
    expect(report.duplicates).toEqual([{ sha256: createHash("sha256").update(model).digest("hex"), size: model.length, wastedBytes: model.length, paths: [join(comfy, "models/checkpoints/sdxl.safetensors"), join(a1111, "models/Stable-diffusion/sdxl.safetensors")] }]);
    expect(report.linked.map((l) => l.path)).toEqual([join(a1111, "models/Lora/style.safetensors")]);
    expect(report.brokenLinks.map((l) => l.path)).toEqual([join(comfy, "models/checkpoints/broken.safetensors")]);
    expect(report.byKind.checkpoint!.files).toBe(2);
    const human = await run(["library", "scan", "webui", "ComfyUI"]);
    expect(human.out).toContain("duplicate ×2 (100 KB each, 100 KB wasted):");
    expect(human.out).toMatch(/^│ duplicates +1 duplicate group, 100 KB wasted +│$/m);
    expect(human.out).toMatch(/^│ links +1 broken, 0 out of the roots +│$/m);
    expect(human.out).toMatch(/^│ next +stmerge library dedupe .* --dry-run \(frees it; prints the plan first\) +│$/m);
    expect(human.out).toContain(`broken link: ${join(comfy, "models/checkpoints/broken.safetensors")} → gone.safetensors`);
  });

  it("dedupe --dry-run prints the plan and changes nothing; without --yes and no terminal it refuses", async () => {
    const dup = join(a1111, "models/Stable-diffusion/sdxl.safetensors");
    const dry = await run(["library", "dedupe", "webui", "ComfyUI", "--dry-run"]);
    expect(dry.code, dry.err).toBe(0);
    expect(dry.out).toContain(`keep ${join(comfy, "models/checkpoints/sdxl.safetensors")}  (in a ComfyUI-style folder;`);
    expect(dry.out).toContain(`  symlink  ${dup}  (--link symlink)`);
    expect(dry.out).toContain("sidecars stay beside it: sdxl.preview.png");
    expect(dry.err).toContain("dry run: nothing was changed");
    expect(lstatSync(dup).isFile()).toBe(true);
    const refused = await run(["library", "dedupe", "webui", "ComfyUI"]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain("stmerge: nothing was changed: confirm with --yes (stdin is not a terminal)");
    expect(lstatSync(dup).isFile()).toBe(true);
    const badLink = await run(["library", "dedupe", "webui", "--link", "copy"]);
    expect(badLink.code).toBe(2);
  });

  it("dedupe --yes links the copy, verify finds the broken link, undo restores the file", async () => {
    const dup = join(a1111, "models/Stable-diffusion/sdxl.safetensors");
    const applied = await run(["library", "dedupe", "webui", "ComfyUI", "--yes"]);
    expect(applied.code, applied.err).toBe(0);
    expect(applied.out).toMatch(/^╭─ ✔ deduplicated ─+╮$/m);
    expect(applied.out).toMatch(/^│ links +1 linked, 0 skipped, 0 failed +│$/m);
    expect(applied.out).toMatch(/^│ journal +.*journals\/dedupe-.*\.jsonl +│$/m);
    expect(applied.out).toMatch(/^│ undo +stmerge library undo .*journals\/dedupe-.*\.jsonl +│$/m);
    expect(readlinkSync(dup)).toBe("../../../ComfyUI/models/checkpoints/sdxl.safetensors");
    expect(sha(dup)).toBe(createHash("sha256").update(model).digest("hex"));
    const verify = await run(["library", "verify", "webui", "ComfyUI"]);
    expect(verify.code).toBe(1);
    expect(verify.out).toContain("1 broken, 0 escaping, 0 duplicate group(s)");
    rmSync(join(comfy, "models/checkpoints/broken.safetensors"));
    expect((await run(["library", "verify", "webui", "ComfyUI"])).out).toContain("library ok");
    const undo = await run(["library", "undo"]);
    expect(undo.code, undo.err).toBe(0);
    expect(undo.out).toContain(`restored       ${dup}`);
    expect(lstatSync(dup).isFile()).toBe(true);
    expect(readFileSync(dup)).toEqual(model);
    expect((await run(["library", "undo"])).err).toContain("stmerge: no dedupe to undo in");
  });

  it("comfy-paths prints the YAML, writes it atomically and never overwrites without --overwrite", async () => {
    const printed = await run(["library", "comfy-paths", "webui"]);
    expect(printed.code, printed.err).toBe(0);
    // The a1111 section of ComfyUI's extra_model_paths.yaml.example (ComfyUI's own example file).
    expect(printed.out).toBe(
      [
        "# ComfyUI extra_model_paths.yaml written by stmerge: ComfyUI also lists the models of this A1111/Forge install.",
        "a1111:",
        `  base_path: ${a1111}`,
        "  checkpoints: models/Stable-diffusion",
        "  configs: models/Stable-diffusion",
        "  vae: models/VAE",
        "  loras: |",
        "    models/Lora",
        "    models/LyCORIS",
        "  upscale_models: |",
        "    models/ESRGAN",
        "    models/RealESRGAN",
        "    models/SwinIR",
        "  embeddings: embeddings",
        "  hypernetworks: models/hypernetworks",
        "  controlnet: models/ControlNet",
        "",
      ].join("\n"),
    );
    const target = join(comfy, "extra_model_paths.yaml");
    expect((await run(["library", "comfy-paths", "webui", "-o", target])).code).toBe(0);
    expect(readFileSync(target, "utf8")).toBe(printed.out);
    const again = await run(["library", "comfy-paths", "webui", "-o", target]);
    expect(again.code).toBe(1);
    expect(again.err).toContain(`${target}: output already exists (use --overwrite to replace it)`);
    expect((await run(["library", "comfy-paths", "webui", "-o", target, "--overwrite"])).code).toBe(0);
    const notA1111 = await run(["library", "comfy-paths", "ComfyUI"]);
    expect(notA1111.code).toBe(1);
    expect(notA1111.err.trim()).toBe(`stmerge: ${comfy}: not an A1111/Forge folder (no models/Stable-diffusion inside) [LIBRARY_NOT_A1111]`);
  });

  it("link adds a model and its sidecars where each UI expects it, and never replaces a file", async () => {
    const store = join(dir, "store/new.safetensors");
    put(store, "new model");
    put(join(dir, "store/new.civitai.info"), "{}");
    const r = await run(["library", "link", store, "--into", join(a1111, "models/Stable-diffusion"), join(comfy, "models/checkpoints")]);
    expect(r.code, r.err).toBe(0);
    expect(readlinkSync(join(comfy, "models/checkpoints/new.safetensors"))).toBe("../../../store/new.safetensors");
    expect(readlinkSync(join(comfy, "models/checkpoints/new.civitai.info"))).toBe("../../../store/new.civitai.info");
    expect(readFileSync(join(a1111, "models/Stable-diffusion/new.safetensors"), "utf8")).toBe("new model");
    expect((await run(["library", "link", store, "--into", join(comfy, "models/checkpoints")])).out).toContain("already there");
    put(join(dir, "other/sdxl.safetensors"), "different");
    const taken = await run(["library", "link", join(dir, "other/sdxl.safetensors"), "--into", join(comfy, "models/checkpoints")]);
    expect(taken.code).toBe(1);
    expect(taken.err).toContain("another file already has this name; nothing was replaced");
    expect(existsSync(join(comfy, "models/checkpoints/sdxl.safetensors"))).toBe(true);
    expect(readFileSync(join(comfy, "models/checkpoints/sdxl.safetensors"))).toEqual(model);
  });

  it("link --link auto says which link it made and why; --link must be a known kind", async () => {
    const store = join(dir, "store/new.safetensors");
    put(store, "new model");
    const r = await run(["library", "link", store, "--into", join(comfy, "models/checkpoints"), "--link", "auto"]);
    expect(r.code, r.err).toBe(0);
    const target = join(comfy, "models/checkpoints/new.safetensors");
    // ext4 and tmpfs (the test's temp folder) do not clone; btrfs/XFS would give a reflink.
    if (r.out.startsWith("reflink ")) expect(r.err).toContain("auto: the file system clones");
    else {
      expect(r.out.trim()).toBe(`hardlink ${target}`);
      expect(r.err).toMatch(/auto: no clone \((ENOTSUP|EOPNOTSUPP|EXDEV|ENOSYS|EINVAL|ENOTTY): this file system does not clone\); a hard link keeps a real file name on the same file system/);
      expect(lstatSync(target).ino).toBe(lstatSync(store).ino);
    }
    expect(readFileSync(target, "utf8")).toBe("new model");
    const json = await run(["library", "link", store, "--into", join(a1111, "models/Stable-diffusion"), "--link", "auto", "--json"]);
    expect(json.code, json.err).toBe(0);
    expect(JSON.parse(json.out)).toEqual([expect.objectContaining({ path: join(a1111, "models/Stable-diffusion/new.safetensors"), outcome: "linked", link: expect.stringMatching(/^(reflink|hardlink)$/), reason: expect.stringMatching(/^auto: /) })]);
    const bad = await run(["library", "link", store, "--into", join(comfy, "models/loras"), "--link", "copy"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toContain('--link must be one of symlink, hardlink, reflink, auto (got "copy")');
    expect(existsSync(join(comfy, "models/loras/new.safetensors"))).toBe(false);
  });
});
