import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseDotEnv, resolveApiKey, resolveBaseUrl } from "./api-key.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-dotenv-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("API key and base URL", () => {
  it("parses the common .env forms", () => {
    const env = parseDotEnv(['# comment', "CIVITAI_API_KEY=abc123", 'export QUOTED="a b # not comment"', "SINGLE='x y'", "TRAIL=value # note", "  SPACED = v  ", "bad line", ""].join("\n"));
    expect(env).toEqual({ CIVITAI_API_KEY: "abc123", QUOTED: "a b # not comment", SINGLE: "x y", TRAIL: "value", SPACED: "v" });
  });

  it("the environment wins over .env; .env in the working folder is read otherwise", async () => {
    await writeFile(join(dir, ".env"), "OTHER=1\nCIVITAI_API_KEY=from-dotenv\n");
    expect(resolveApiKey({ env: { CIVITAI_API_KEY: "from-env" }, cwd: dir })).toEqual({ key: "from-env", from: "env" });
    expect(resolveApiKey({ env: {}, cwd: dir })).toEqual({ key: "from-dotenv", from: "dotenv", dotenvPath: join(dir, ".env") });
    expect(resolveApiKey({ env: { CIVITAI_API_KEY: "  " }, cwd: join(dir, "nowhere") })).toEqual({ key: undefined, from: "none" });
  });

  it("base URL defaults to civitai.com and follows CIVITAI_BASE_URL", () => {
    expect(resolveBaseUrl({})).toBe("https://civitai.com");
    expect(resolveBaseUrl({ CIVITAI_BASE_URL: "http://127.0.0.1:9/" })).toBe("http://127.0.0.1:9");
    expect(resolveBaseUrl({ CIVITAI_BASE_URL: "https://mirror.example/api/v1/" })).toBe("https://mirror.example");
  });
});
