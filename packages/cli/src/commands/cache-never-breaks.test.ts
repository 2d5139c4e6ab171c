import { createServer as createHttpServer } from "node:http";
import { createServer } from "node:net";
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinySd1Model } from "@stmerge/test-utils";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { memoryIo } from "../cli-io.js";
import { runCli } from "../run-cli.js";

// The cache and CivitAI are extras: when they fail, the command still does its job, says so in
// one warning, and exits 0.
const CACHE_FIXTURES = join(import.meta.dirname, "..", "..", "..", "cache", "test", "fixtures");
const expected = JSON.parse(await readFile(join(CACHE_FIXTURES, "hashes.json"), "utf8")) as { committed: Record<string, { sha256: string; crc32: string }> };
const tinySha = expected.committed["tiny.safetensors"]!.sha256;

let dir: string;
/** A cache path no process can create: one of its folders is a regular file. */
let unwritable: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "stmerge-cli-cache-never-breaks-"));
  await copyFile(join(CACHE_FIXTURES, "tiny.safetensors"), join(dir, "tiny.safetensors"));
  await writeFile(join(dir, "a-file"), "x");
  unwritable = join(dir, "a-file", "missing", "cache.json");
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function run(args: string[], env: Record<string, string>) {
  const io = memoryIo({ env: { STMERGE_NO_BANNER: "1", ...env }, cwd: dir });
  const code = await runCli(args, io);
  return { code, out: io.out(), err: io.err() };
}

/**
 * `run` with setTimeout and Date on a fake clock that only the command's own timers move, each
 * straight to when it is due: its waits (the cache lock's 15 s, CivitAI's backoff between
 * attempts) pass in a moment while files, hashes and sockets stay real. `waitedMs` is how far the
 * fake clock moved.
 */
async function runOnFastClock(args: string[], env: Record<string, string>) {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] });
  try {
    const started = Date.now();
    let settled = false;
    const pending = run(args, env).finally(() => (settled = true));
    while (!settled) {
      if (vi.getTimerCount() > 0) await vi.advanceTimersToNextTimerAsync();
      await new Promise((resolve) => setImmediate(resolve));
    }
    return { ...(await pending), waitedMs: Date.now() - started };
  } finally {
    vi.useRealTimers();
  }
}

type Reply = { status: number; json?: unknown; text?: string; headers?: Record<string, string> };

/** A stand-in for the CivitAI API on 127.0.0.1 that records requests and answers as scripted. */
async function startFakeCivitai(handler: (req: { method: string; url: string; body: string }) => Reply) {
  const requests: { method: string; url: string; body: string }[] = [];
  const server = createHttpServer((req, res) => {
    let body = "";
    req.on("data", (d: Buffer) => (body += d.toString()));
    req.on("end", () => {
      const recorded = { method: req.method ?? "", url: req.url ?? "", body };
      requests.push(recorded);
      const reply = handler(recorded);
      res.writeHead(reply.status, { "content-type": reply.text === undefined ? "application/json" : "text/plain", ...reply.headers });
      res.end(reply.text ?? JSON.stringify(reply.json ?? null));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    baseUrl: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    close: () => new Promise<void>((r) => (server.closeAllConnections(), server.close(() => r()))),
  };
}

/** A 127.0.0.1 port with nothing listening (taken, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe("an unusable cache never costs the command's result", () => {
  it("hash with an unwritable cache prints its hashes, one warning, exit 0", async () => {
    const r = await run(["hash", "tiny.safetensors", "--algo", "sha256,crc32"], { STMERGE_CACHE: unwritable });
    expect(r.code).toBe(0);
    expect(r.out).toContain(`SHA256  ${tinySha}`);
    expect(r.out).toContain(`CRC32   ${expected.committed["tiny.safetensors"]!.crc32}`);
    expect(r.err.split("\n").filter((l) => l.startsWith("warning:"))).toEqual([expect.stringMatching(/^warning: cache not updated: .*a-file\/missing\/cache\.json: cannot create the cache folder/)]);
  });

  it("hash --json with an unwritable cache: the hashes on stdout, the warning as a JSON line", async () => {
    const r = await run(["hash", "tiny.safetensors", "--algo", "sha256", "--json"], { STMERGE_CACHE: unwritable });
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ files: [{ hashes: { sha256: tinySha }, cached: false }] });
    const warnings = r.err.split("\n").filter((l) => l.includes('"warning"')).map((l) => JSON.parse(l));
    expect(warnings).toEqual([expect.objectContaining({ type: "warning", message: expect.stringContaining("cache not updated") })]);
  });
});

describe("a cache locked by another process", () => {
  it("hash waits a bounded time for the lock, then prints its hashes with one warning, exit 0", async () => {
    const cache = join(dir, "held.json");
    // The lock of a live process (this one) taken just now: not stale, so it is waited for.
    await writeFile(`${cache}.lock`, JSON.stringify({ pid: process.pid, host: hostname(), created: Date.now(), token: "someone-else" }));
    const r = await runOnFastClock(["hash", "tiny.safetensors", "--algo", "sha256"], { STMERGE_CACHE: cache });
    expect(r.code).toBe(0);
    expect(r.out).toContain(`SHA256  ${tinySha}`);
    expect(r.err.split("\n").filter((l) => l.startsWith("warning:"))).toEqual([expect.stringMatching(/^warning: cache not updated: .*held\.json\.lock: the cache is locked by pid \d+/)]);
    // It waited the lock's 15 s (on the fake clock) before giving up, and not much longer.
    expect(r.waitedMs).toBeGreaterThanOrEqual(15_000);
    expect(r.waitedMs).toBeLessThan(20_000);
  }, 60_000);
});

describe("CivitAI unreachable never fails a command", () => {
  it("cache add with a key and nothing listening: the summary, one CivitAI warning, exit 0, hashes kept", async () => {
    const cache = join(dir, "unreachable.json");
    const env = { STMERGE_CACHE: cache, CIVITAI_BASE_URL: `http://127.0.0.1:${await closedPort()}`, CIVITAI_API_KEY: "sk-test" };
    const r = await runOnFastClock(["cache", "add", "tiny.safetensors"], env);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^│ files +1 file: 1 hashed/m);
    expect(r.err).toMatch(/^warning: CivitAI not reached \(.*gave up after 3 attempts\)\); going on without it/m);
    expect(r.err.match(/^warning:/gm)).toHaveLength(1);
    expect(Object.keys(JSON.parse(await readFile(cache, "utf8")).models)).toEqual([tinySha]);
  });

  it("cache add when CivitAI answers 503 with a long Retry-After: warning at once, exit 0", async () => {
    const fake = await startFakeCivitai(() => ({ status: 503, text: "maintenance", headers: { "retry-after": "3600" } }));
    try {
      const started = Date.now();
      const r = await run(["cache", "add", "tiny.safetensors", "--civitai"], { STMERGE_CACHE: join(dir, "busy.json"), CIVITAI_BASE_URL: fake.baseUrl });
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/^warning: CivitAI not reached \(.*retry after 3600 s\)/m);
      expect(r.out).toMatch(/^│ files +1 file: 1 hashed/m);
      expect(Date.now() - started).toBeLessThan(10_000);
    } finally {
      await fake.close();
    }
  });
});

describe("scan --civitai looks files up, or says why it cannot", () => {
  beforeAll(async () => {
    await mkdir(join(dir, "models"));
    const shapes: [string, number[]][] = [
      ["model.diffusion_model.input_blocks.1.1.transformer_blocks.0.attn2.to_k.weight", [2, 768]],
      ["cond_stage_model.transformer.text_model.final_layer_norm.weight", [4]],
    ];
    for (const [i, name] of ["one", "two"].entries()) {
      await writeTinySd1Model(join(dir, "models", `${name}.safetensors`), { layout: shapes, value: (_, k) => k * (i + 1) });
    }
  });

  it("without hashes: a warning naming --compute-hashes, and no request", async () => {
    const fake = await startFakeCivitai(() => ({ status: 200, json: [] }));
    try {
      const r = await run(["scan", "models", "-o", "plain.json", "--civitai"], { STMERGE_CACHE: join(dir, "scan-cache.json"), CIVITAI_BASE_URL: fake.baseUrl });
      expect(r.code).toBe(0);
      expect(r.err).toContain("warning: CivitAI: 2 files have no hash yet and were not looked up; add --compute-hashes");
      expect(fake.requests).toHaveLength(0);
    } finally {
      await fake.close();
    }
  });

  it("with --compute-hashes: one bulk look-up, the answer stored", async () => {
    const fake = await startFakeCivitai((req) => {
      if (req.method === "POST") {
        const asked = JSON.parse(req.body) as string[];
        return { status: 200, json: [{ id: 5, modelId: 4, name: "v1", baseModel: "SD 1.5", trainedWords: [], model: { name: "One", type: "Checkpoint", nsfw: false }, files: [{ name: "one.safetensors", hashes: { SHA256: asked[0] } }] }] };
      }
      return { status: 404, json: { error: "Model not found" } };
    });
    try {
      const cache = join(dir, "scan-cache2.json");
      const r = await run(["scan", "models", "-o", "hashed.json", "--compute-hashes", "--civitai"], { STMERGE_CACHE: cache, CIVITAI_BASE_URL: fake.baseUrl });
      expect(r.code).toBe(0);
      expect(r.err).toContain("CivitAI: 1 found, 1 not found of 2 looked up");
      expect(fake.requests[0]).toMatchObject({ method: "POST", url: "/api/v1/model-versions/by-hash" });
      const show = await run(["cache", "show", "one.safetensors"], { STMERGE_CACHE: cache });
      expect(show.out).toMatch(/CivitAI +One \/ v1|CivitAI +not found/);
    } finally {
      await fake.close();
    }
  });

  it("CivitAI down during scan: the manifest is still written, one warning, exit 0", async () => {
    const r = await runOnFastClock(["scan", "models", "-o", "down.json", "--compute-hashes", "--civitai"], { STMERGE_CACHE: join(dir, "scan-cache3.json"), CIVITAI_BASE_URL: `http://127.0.0.1:${await closedPort()}` });
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/^warning: CivitAI not reached/m);
    expect(JSON.parse(await readFile(join(dir, "down.json"), "utf8")).models).toHaveLength(2);
  });
});
