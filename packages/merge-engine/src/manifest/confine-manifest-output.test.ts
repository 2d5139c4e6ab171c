import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { confineManifestOutput } from "./confine-manifest-output.js";
import { parseManifest } from "./load-manifest.js";

const root = mkdtempSync(join(tmpdir(), "stmerge-confine-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const dir = join(root, "models");
mkdirSync(join(dir, "sub"), { recursive: true });
mkdirSync(join(root, "elsewhere"));
symlinkSync(join(root, "elsewhere"), join(dir, "escape"));

const manifestWith = (output: unknown) => {
  const text = JSON.stringify({ models: [{ path: "a.safetensors", weight: 1 }], ...(output === undefined ? {} : { output }) });
  writeFileSync(join(dir, "m.json"), text);
  return parseManifest(text, join(dir, "m.json"), { cwd: root });
};

describe("confineManifestOutput", () => {
  it("accepts .safetensors outputs inside the manifest's folder (the default name too)", () => {
    expect(confineManifestOutput(manifestWith(undefined))).toBe(join(dir, "merged_output.safetensors"));
    expect(confineManifestOutput(manifestWith({ path: "sub/out.SAFETENSORS" }))).toBe(join(dir, "sub", "out.SAFETENSORS"));
    expect(confineManifestOutput(manifestWith("./sub/./x.safetensors"))).toBe(join(dir, "sub", "x.safetensors"));
  });

  it.each([
    ["../outside.safetensors", "leaves the manifest's folder with .."],
    ["sub/../../outside.safetensors", "leaves the manifest's folder with .."],
    ["sub\\..\\..\\outside.safetensors", "leaves the manifest's folder with .."],
    ["/etc/cron.d/evil.safetensors", "is an absolute path"],
    ["C:\\Windows\\evil.safetensors", "is an absolute path"],
    ["evil.sh", "is not a .safetensors file"],
    ["model.ckpt", "is not a .safetensors file"],
    ["escape/out.safetensors", "leads outside the manifest's folder"],
  ])("refuses %s with one line (%s)", (output, why) => {
    let error: unknown;
    try {
      confineManifestOutput(manifestWith({ path: output }));
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: "MANIFEST_OUTPUT_REFUSED" });
    const message = (error as Error).message;
    expect(message).toContain(why);
    expect(message).toContain("use -o to write elsewhere");
    expect(message).not.toContain("\n");
  });
});

describe("parseManifest depth limit", () => {
  it("refuses a manifest nested a million deep with one line, before anything stringifies it", () => {
    const text = `{"models":[{"path":"a.safetensors","weight":1}],"merge_params":{"x":${"[".repeat(1_000_000)}${"]".repeat(1_000_000)}}}`;
    expect(() => parseManifest(text, join(dir, "deep.json"))).toThrow(expect.objectContaining({ code: "MANIFEST_TOO_DEEP", message: `${join(dir, "deep.json")}: JSON nests deeper than 64 levels` }));
  });
});
