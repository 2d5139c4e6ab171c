import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { JSON_DOCUMENTS, nonCamelKeys } from "../test/json-document-schemas.js";
import { memoryIo } from "./cli-io.js";
import { runCli } from "./run-cli.js";

const dir = mkdtempSync(join(tmpdir(), "stmerge-json-"));
const demo = join(dir, "demo");
const env = { HOME: dir, STMERGE_CACHE: join(demo, "model_cache.json"), STMERGE_NO_BANNER: "1" };
let steps: { command: string; output: unknown }[] = [];
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function json(argv: string[]): Promise<unknown> {
  const io = memoryIo({ cwd: demo, env });
  const code = await runCli([...argv, "--json"], io);
  expect(code, io.err()).toBe(0);
  return JSON.parse(io.out());
}

beforeAll(async () => {
  // The demo runs audit, convert, verify, scan, merge --dry-run, merge, inspect and hash with --json.
  const doc = (await json(["demo", demo])) as { ok: boolean; steps: { command: string; output: unknown }[] };
  expect(doc.ok).toBe(true);
  steps = doc.steps;
}, 120_000);

const commandOf = (shown: string): string => (shown.split(" ")[1] === "merge" && shown.includes("--dry-run") ? "merge" : shown.split(" ")[1]!);

describe("--json documents", () => {
  it("every demo step's document matches its command's schema and is camelCase", () => {
    expect(steps.map((s) => commandOf(s.command))).toEqual(["audit", "convert", "verify", "scan", "merge", "merge", "inspect", "hash"]);
    for (const step of steps) {
      const schema = JSON_DOCUMENTS[commandOf(step.command) as keyof typeof JSON_DOCUMENTS];
      const parsed = schema.safeParse(step.output);
      expect(parsed.success, `${step.command}: ${parsed.error?.message}`).toBe(true);
      expect(nonCamelKeys(step.output), step.command).toEqual([]);
    }
  });

  it("name the same thing the same way: an output file is output.path with sizeBytes and sha256", () => {
    const convert = steps.find((s) => commandOf(s.command) === "convert")!.output as { output: { path: string; sha256: string } };
    const merge = steps.at(-3)!.output as { output: { path: string; sha256: string } };
    const hash = steps.at(-1)!.output as { files: { path: string; hashes: { sha256: string }; cached: boolean }[] };
    expect(convert.output.path).toMatch(/demo-base\.safetensors$/);
    // The merge output was hashed while written, so `hash` answers from the cache with the same value.
    expect(hash.files[0]).toMatchObject({ path: merge.output.path, hashes: { sha256: merge.output.sha256 }, cached: true });
  });

  it.each([
    ["extract-vae", ["extract-vae", "output/demo-merge.safetensors", "-o", "output/vae.safetensors"]],
    ["hash", ["hash", "models/demo-anime.safetensors", "--no-cache", "--algo", "sha256,crc32"]],
    ["cache list", ["cache", "list"]],
    ["cache info", ["cache", "info"]],
  ] as const)("%s --json matches its schema and is camelCase", async (name, argv) => {
    const doc = await json([...argv]);
    const parsed = JSON_DOCUMENTS[name].safeParse(doc);
    expect(parsed.success, parsed.error?.message).toBe(true);
    expect(nonCamelKeys(doc)).toEqual([]);
  });

  it("the checks refuse the old shapes (snake_case keys, a bare output string)", () => {
    expect(nonCamelKeys({ output: { file_size: 1 }, metadata: { "any.key": "x" } })).toEqual(["$.output.file_size"]);
    expect(JSON_DOCUMENTS.convert.safeParse({ command: "convert", input: "/a.ckpt", output: "/a.safetensors", outputBytes: 3, verified: true }).success).toBe(false);
  });
});
