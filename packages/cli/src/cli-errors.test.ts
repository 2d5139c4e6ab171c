import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors } from "@stmerge/core-tensors";
import { injectWriteFault } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { memoryIo } from "./cli-io.js";
import { runCli } from "./run-cli.js";
import { TORCH_FIXTURES } from "../test/torch-fixture-dir.js";

// What users do by accident: each case is one line on stderr naming the file (no stack), the
// right exit code, under --json the same error as an object on stdout, and nothing written.
let dir: string;
const env = () => ({ STMERGE_NO_BANNER: "1", STMERGE_CACHE: join(dir, "cache.json") });

async function run(args: string[]) {
  const io = memoryIo({ cwd: dir, env: env() });
  const code = await runCli(args, io);
  const err = io.err().trim();
  return { code, out: io.out(), err, lines: err.split("\n") };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "stmerge-cli-errors-"));
  mkdirSync(join(dir, "folder.ckpt"));
  mkdirSync(join(dir, "models"));
  writeFileSync(join(dir, "page.safetensors"), "<!DOCTYPE html>\n<html><head><title>Sign in to download</title></head><body></body></html>\n".repeat(20));
  writeFileSync(join(dir, "notes.safetensors"), "These are my notes about the model. It is very good at landscapes.\n".repeat(20));
  copyFileSync(join(TORCH_FIXTURES, "sd_lightning_legacy.ckpt"), join(dir, "pickled.safetensors"));
  copyFileSync(join(TORCH_FIXTURES, "sd_lightning.ckpt"), join(dir, "model.ckpt"));
  await writeSafetensors(join(dir, "real.safetensors"), [{ name: "w", dtype: "F32", shape: [2], data: new Uint8Array(8) }]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const before = () => readdirSync(dir).sort();

describe("one line naming the file for every wrong input", () => {
  it("a folder where a file belongs: extract-vae, verify (convert takes folders: batch)", async () => {
    const files = before();
    const vae = await run(["extract-vae", "folder.ckpt"]);
    expect(vae).toMatchObject({ code: 1, lines: [`stmerge: ${join(dir, "folder.ckpt")}: is a folder, not a file [FILE_UNREADABLE]`] });
    const verify = await run(["verify", "model.ckpt", "models"]);
    expect(verify.code).toBe(1);
    expect(verify.lines).toEqual([`stmerge: ${join(dir, "models")}: is a folder, not a file [FILE_UNREADABLE]`]);
    expect(before()).toEqual(files);
  });

  it("a manifest listing a folder as a model: one line naming the folder, nothing written", async () => {
    writeFileSync(join(dir, "folder-merge.json"), JSON.stringify({ models: [{ path: "real.safetensors", weight: 0.5 }, { path: "models", weight: 0.5 }], merge_method: "weighted_sum", output: { path: "folder-out.safetensors" } }));
    const files = before();
    const r = await run(["merge", "--manifest", "folder-merge.json", "--device", "cpu", "--no-cache"]);
    expect(r.code).toBe(1);
    expect(r.lines).toHaveLength(1);
    expect(r.lines[0]).toMatch(new RegExp(`^stmerge: ${join(dir, "models").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: is a folder, not a file \\[[A-Z_]+\\]$`));
    expect(before()).toEqual(files);
  });

  it("a missing file: audit says it once; scan of a missing folder says no such folder", async () => {
    const audit = await run(["audit", "nope.ckpt"]);
    expect(audit.code).toBe(2);
    expect(audit.out.match(/nope\.ckpt/g)).toHaveLength(1);
    expect(audit.out).toContain("no such file");
    const scan = await run(["scan", "nope_dir"]);
    expect(scan).toMatchObject({ code: 1, lines: [`stmerge: ${join(dir, "nope_dir")}: no such folder [SCAN_NO_SUCH_FOLDER]`] });
  });

  it("a .safetensors that is an HTML page, text or a pickle is named for what it looks like (inspect, extract-vae)", async () => {
    const html = await run(["inspect", "page.safetensors"]);
    expect(html.code).toBe(1);
    expect(html.lines).toEqual([`stmerge: ${join(dir, "page.safetensors")}: not a safetensors file (looks like an HTML page; the download probably saved a web page instead of the model) [NOT_SAFETENSORS]`]);
    const text = await run(["inspect", "notes.safetensors"]);
    expect(text.lines).toEqual([`stmerge: ${join(dir, "notes.safetensors")}: not a safetensors file (looks like a text file) [NOT_SAFETENSORS]`]);
    const vae = await run(["extract-vae", "pickled.safetensors"]);
    expect(vae.code).toBe(1);
    expect(vae.lines).toEqual([`stmerge: ${join(dir, "pickled.safetensors")}: not a safetensors file (looks like a pickle, e.g. a legacy PyTorch checkpoint; \`stmerge convert\` turns one into safetensors) [NOT_SAFETENSORS]`]);
    const zip = await run(["extract-vae", "model.ckpt"]);
    expect(zip.lines[0]).toMatch(/model\.ckpt: not a safetensors file \(looks like a zip archive, e\.g\. a PyTorch \.ckpt\/\.pt checkpoint/);
    expect(before().filter((n) => n.includes("vae"))).toEqual([]);
  });

  it("a header quoting a 1 MB tensor name: one line of under 1000 characters, the file first and the problem last", async () => {
    const header = Buffer.from(JSON.stringify({ ["x".repeat(1_000_000)]: { dtype: "Q9", shape: [1], data_offsets: [0, 2] } }));
    const length = Buffer.alloc(8);
    length.writeBigUInt64LE(BigInt(header.byteLength));
    writeFileSync(join(dir, "long-name.safetensors"), Buffer.concat([length, header, Buffer.alloc(2)]));
    const inspect = await run(["inspect", "long-name.safetensors"]);
    expect(inspect.code).toBe(1);
    expect(inspect.lines).toHaveLength(1);
    expect(inspect.err.length).toBeLessThan(1000);
    expect(inspect.err).toMatch(new RegExp(`^stmerge: ${join(dir, "long-name.safetensors").replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}: tensor "x+… \\(\\d+ characters left out\\) …x+" has unknown dtype "Q9" \\[SAFETENSORS_UNKNOWN_DTYPE\\]$`));
    rmSync(join(dir, "long-name.safetensors"));
  });

  it("audit of a safetensors file: it holds no pickle, exit 0; convert of one says it already is one", async () => {
    const audit = await run(["audit", "real.safetensors"]);
    expect(audit.code).toBe(0);
    const [verdict, ...panel] = audit.out.trim().split("\n");
    expect(verdict).toBe(`CLEAN      ${join(dir, "real.safetensors")} (safetensors: holds no pickle, nothing in it can run code)`);
    // Then only the closing panel, which points at inspect (there is nothing to convert).
    expect(panel[0]).toMatch(/^╭─ ✔ clean ─+╮$/);
    expect(panel).toContainEqual(expect.stringMatching(/^│ next +stmerge inspect real\.safetensors +│$/));
    expect(panel.at(-1)).toMatch(/^╰─+╯$/);
    const convert = await run(["convert", "real.safetensors"]);
    expect(convert.code).toBe(1);
    expect(convert.lines).toEqual([`stmerge: ${join(dir, "real.safetensors")}: already a safetensors file, nothing to convert (\`stmerge inspect\` shows what it holds)`]);
    expect(convert.err).not.toContain("--force");
  });
});

describe("disk faults reach the user as one line naming the output", () => {
  it.each([
    ["ENOSPC", "DISK_FULL", /: disk full: [0-9.]+ [KMGT]?B needed, [0-9.]+ [KMGT]?B free \(free some space or write elsewhere with -o\)$/],
    ["EROFS", "READ_ONLY_FILE_SYSTEM", /: read-only file system \(write the output somewhere else with -o\)$/],
    ["EACCES", "PERMISSION_DENIED", /: permission denied \(check the file's and its folder's permissions\)$/],
  ] as const)("convert with %s while writing: exit 1, the line and the JSON object, no temp file, no output", async (errno, code, reason) => {
    copyFileSync(join(TORCH_FIXTURES, "vae.pt"), join(dir, "disk.pt"));
    const files = before();
    const fault = await injectWriteFault(errno, 2);
    try {
      const r = await run(["convert", "disk.pt", "--no-cache", "--json"]);
      expect(r.code).toBe(1);
      const output = join(dir, "disk.safetensors");
      // Besides JSON progress lines, stderr holds exactly one line: the error.
      const plain = r.lines.filter((l) => !l.startsWith("{"));
      expect(plain).toHaveLength(1);
      expect(r.lines.at(-1)).toBe(plain[0]);
      expect(plain[0]!.startsWith(`stmerge: ${output}: `)).toBe(true);
      expect(plain[0]!.endsWith(` [${code}]`)).toBe(true);
      expect(plain[0]!.replace(/ \[[A-Z_]+\]$/, "")).toMatch(reason);
      expect(JSON.parse(r.out)).toEqual({ error: { code, message: plain[0]!.replace(/^stmerge: /, "").replace(/ \[[A-Z_]+\]$/, ""), file: output } });
    } finally {
      fault.restore();
    }
    expect(before()).toEqual(files);
  });
});

describe("--json errors and exit codes", () => {
  it("under --json an error is also a JSON object on stdout", async () => {
    const r = await run(["inspect", "page.safetensors", "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.out)).toEqual({
      error: {
        code: "NOT_SAFETENSORS",
        message: `${join(dir, "page.safetensors")}: not a safetensors file (looks like an HTML page; the download probably saved a web page instead of the model)`,
        file: join(dir, "page.safetensors"),
      },
    });
    expect(r.lines).toHaveLength(1);
  });

  it("usage errors exit 2, with --json too", async () => {
    const md5 = await run(["hash", "real.safetensors", "--algo", "md5", "--no-cache"]);
    expect(md5.code).toBe(2);
    expect(md5.lines).toEqual([expect.stringMatching(/^stmerge: --algo: unknown hash algorithm "md5" \(known: /)]);
    const md5json = await run(["hash", "real.safetensors", "--algo", "md5", "--json", "--no-cache"]);
    expect(md5json.code).toBe(2);
    expect(JSON.parse(md5json.out)).toMatchObject({ error: { code: "BAD_FLAG", file: null } });
    const negative = await run(["inspect", "real.safetensors", "-n", "-5"]);
    expect(negative.code).toBe(2);
    expect(negative.lines).toEqual([`stmerge: --keys must be a whole number (0 or more), got "-5"`]);
    const unknown = await run(["inspect", "real.safetensors", "--json", "--frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(JSON.parse(unknown.out)).toEqual({ error: { code: "USAGE", message: "unknown option '--frobnicate'", file: null } });
  });

  it("bare stmerge prints the help on stdout and exits 0", async () => {
    const r = await run([]);
    expect(r.code).toBe(0);
    expect(r.out).toContain("Usage: stmerge");
    expect(r.out).toContain("Examples:");
    expect(r.err).toBe("");
  });
});
