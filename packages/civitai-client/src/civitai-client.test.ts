import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { startFakeCivitai, type FakeHandler, type RecordedRequest } from "../test/fake-civitai.js";
import { CivitaiClient, createCivitaiClient, type CivitaiClientOptions } from "./civitai-client.js";
import { CivitaiError } from "./civitai-error.js";
import { summarizeModelVersion } from "./model-version-summary.js";
import type { Clock } from "./rate-limiter.js";

const FIXTURES = join(import.meta.dirname, "..", "test", "fixtures");
const versionJson = JSON.parse(await readFile(join(FIXTURES, "model-version.json"), "utf8")) as Record<string, unknown> & { files: { hashes: { SHA256: string } }[] };
const modelJson = JSON.parse(await readFile(join(FIXTURES, "model.json"), "utf8")) as Record<string, unknown>;
const SHA = versionJson.files[0]!.hashes.SHA256;
const KEY = "sk-test-0123456789abcdef";

let close: (() => Promise<void>) | undefined;
afterEach(async () => {
  await close?.();
  close = undefined;
});

/** A clock whose sleeps return at once and are recorded, so retry waits are asserted, not waited. */
function recordingClock(): Clock & { sleeps: number[] } {
  const sleeps: number[] = [];
  return { sleeps, now: () => Date.now(), sleep: async (ms) => void sleeps.push(ms) };
}

async function setup(handler: FakeHandler, options: CivitaiClientOptions = {}): Promise<{ client: CivitaiClient; requests: RecordedRequest[]; clock: ReturnType<typeof recordingClock> }> {
  const fake = await startFakeCivitai(handler);
  close = fake.close;
  const clock = recordingClock();
  const client = createCivitaiClient({ baseUrl: fake.baseUrl, apiKey: null, rateLimit: false, clock, random: () => 1, retry: { retries: 3, baseDelayMs: 10, maxDelayMs: 1000 }, timeoutMs: 2000, ...options });
  return { client, requests: fake.requests, clock };
}

describe("CivitaiClient against a local fake API", () => {
  it("by-hash success: typed, validated, unknown fields kept", async () => {
    const { client, requests } = await setup(() => ({ status: 200, json: versionJson }));
    const result = await client.getModelVersionByHash(SHA.toLowerCase());
    expect(result.found).toBe(true);
    if (!result.found) return;
    expect(result.value.baseModel).toBe("SDXL 1.0");
    expect(result.value.files?.[0]?.hashes?.AutoV2).toBe("E6BB9EA85B");
    expect((result.value as Record<string, unknown>).someFieldAddedLater).toEqual({ nested: true });
    expect(summarizeModelVersion(result.value)).toEqual({ model_id: 101055, version_id: 128078, base_model: "SDXL 1.0", model_name: "SD XL", version_name: "v1.0 VAE fix", nsfw: false, trained_words: [], type: "Checkpoint" });
    expect(requests[0]).toMatchObject({ method: "GET", url: `/api/v1/model-versions/by-hash/${SHA}` });
    expect(requests[0]!.headers.authorization).toBeUndefined();
    expect(client.authenticated).toBe(false);
  });

  it("model and model-version by id", async () => {
    const { client, requests } = await setup((req) => (req.url.startsWith("/api/v1/models/") ? { status: 200, json: modelJson } : { status: 200, json: versionJson }));
    const model = await client.getModel(101055);
    expect(model.found && model.value.modelVersions?.[0]?.id).toBe(128078);
    expect(model.found && model.value.tags).toEqual(["base model", "sdxl"]);
    const version = await client.getModelVersion(128078);
    expect(version.found && version.value.modelId).toBe(101055);
    expect(requests.map((r) => r.url)).toEqual(["/api/v1/models/101055", "/api/v1/model-versions/128078"]);
    await expect(client.getModel(-1)).rejects.toMatchObject({ code: "CIVITAI_INVALID_ARGUMENT" });
  });

  it("404 is a not-found result, not an error, and is not retried", async () => {
    const { client, requests } = await setup(() => ({ status: 404, json: { error: "Model not found" } }));
    expect(await client.getModelVersionByHash("ABCDEF0123")).toEqual({ found: false, reason: "Model not found" });
    expect(requests).toHaveLength(1);
  });

  it("429 with Retry-After in seconds waits that long, then succeeds", async () => {
    const { client, requests, clock } = await setup((_r, i) => (i === 0 ? { status: 429, json: { error: "slow down" }, headers: { "retry-after": "3" } } : { status: 200, json: versionJson }));
    const result = await client.getModelVersionByHash(SHA);
    expect(result.found).toBe(true);
    expect(requests).toHaveLength(2);
    expect(clock.sleeps).toEqual([3000]);
  });

  it("429 with Retry-After as an HTTP date", async () => {
    const when = new Date(Date.now() + 5000).toUTCString();
    const { client, clock } = await setup((_r, i) => (i === 0 ? { status: 429, json: {}, headers: { "retry-after": when } } : { status: 200, json: versionJson }));
    await client.getModelVersionByHash(SHA);
    expect(clock.sleeps).toHaveLength(1);
    expect(clock.sleeps[0]).toBeGreaterThan(3000);
    expect(clock.sleeps[0]).toBeLessThanOrEqual(5000);
  });

  it("429 without Retry-After backs off exponentially and finally fails as rate limited", async () => {
    const retried: number[] = [];
    const { client, requests, clock } = await setup(() => ({ status: 429, json: { error: "Too many requests" } }), { onRetry: (i) => retried.push(i.attempt) });
    const error = await client.getModelVersionByHash(SHA).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CivitaiError);
    expect(error).toMatchObject({ code: "CIVITAI_RATE_LIMITED", status: 429, transient: true });
    expect((error as Error).message).toContain("gave up after 4 attempts");
    expect(requests).toHaveLength(4);
    expect(clock.sleeps).toEqual([10, 20, 40]);
    expect(retried).toEqual([1, 2, 3]);
  });

  it("jitter keeps backoff between half and all of the exponential delay", async () => {
    const { client, clock } = await setup(() => ({ status: 503, json: {} }), { random: () => 0 });
    await expect(client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_SERVER_ERROR", status: 503 });
    expect(clock.sleeps).toEqual([5, 10, 20]);
  });

  it("a Retry-After beyond the limit fails at once instead of sleeping", async () => {
    const { client, requests, clock } = await setup(() => ({ status: 429, json: {}, headers: { "retry-after": "3600" } }), { retry: { retries: 3, maxRetryAfterMs: 60_000 } });
    await expect(client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_RATE_LIMITED", message: expect.stringContaining("retry after 3600 s") });
    expect(requests).toHaveLength(1);
    expect(clock.sleeps).toEqual([]);
  });

  it("500 then success", async () => {
    const { client, requests } = await setup((_r, i) => (i < 2 ? { status: 500, json: { error: "Failed to fetch model version details" } } : { status: 200, json: versionJson }));
    expect((await client.getModelVersionByHash(SHA)).found).toBe(true);
    expect(requests).toHaveLength(3);
  });

  it("500 every time ends in a server error naming the endpoint", async () => {
    const { client } = await setup(() => ({ status: 500, json: { error: "Failed to fetch model version details" } }));
    await expect(client.getModelVersion(5)).rejects.toMatchObject({
      code: "CIVITAI_SERVER_ERROR",
      message: expect.stringMatching(/CivitAI GET \/api\/v1\/model-versions\/5: CivitAI server error HTTP 500 \(Failed to fetch model version details\)/),
    });
  });

  it("a slow answer times out and is retried; a timely one then succeeds", async () => {
    const { client, requests } = await setup((_r, i) => (i === 0 ? { status: 200, json: versionJson, delayMs: 400 } : { status: 200, json: versionJson }), { timeoutMs: 100 });
    expect((await client.getModelVersionByHash(SHA)).found).toBe(true);
    expect(requests).toHaveLength(2);
  });

  it("an answer that never comes in time is a timeout error", async () => {
    const { client } = await setup(() => ({ status: 200, json: versionJson, delayMs: 400 }), { timeoutMs: 60, retry: { retries: 1, baseDelayMs: 1 } });
    await expect(client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_TIMEOUT", transient: true, message: expect.stringContaining("no answer within 60 ms") });
  });

  it("malformed JSON is a transient bad response: retried, then reported", async () => {
    const { client, requests } = await setup(() => ({ status: 200, text: '{"id": 1, "name": ' , headers: { "content-type": "application/json" } }));
    await expect(client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_BAD_RESPONSE", message: expect.stringContaining("not valid JSON") });
    expect(requests).toHaveLength(4);
  });

  it("an HTML challenge page is a clear transient error, and a retry can get through", async () => {
    const html = "<!DOCTYPE html><html><head><title>Just a moment...</title></head><body>Checking your browser</body></html>";
    const { client, requests } = await setup((_r, i) => (i === 0 ? { status: 403, text: html, headers: { "content-type": "text/html; charset=UTF-8" } } : { status: 200, json: versionJson }));
    expect((await client.getModelVersionByHash(SHA)).found).toBe(true);
    expect(requests).toHaveLength(2);
    await close?.();
    const always = await setup(() => ({ status: 200, text: html, headers: { "content-type": "text/html" } }));
    await expect(always.client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_BAD_RESPONSE", message: expect.stringContaining("HTML page instead of JSON") });
  });

  it("an answer of the wrong shape is a bad response and is not retried", async () => {
    const { client, requests } = await setup(() => ({ status: 200, json: { ...versionJson, id: "not a number" } }));
    await expect(client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_BAD_RESPONSE", transient: false, message: expect.stringContaining("id:") });
    expect(requests).toHaveLength(1);
  });

  it("a dropped connection is a network error, retried", async () => {
    const { client, requests } = await setup((_r, i) => (i < 2 ? { destroy: true } : { status: 200, json: versionJson }));
    expect((await client.getModelVersionByHash(SHA)).found).toBe(true);
    expect(requests).toHaveLength(3);
  });

  it("connection refused ends in CIVITAI_NETWORK", async () => {
    const fake = await startFakeCivitai(() => ({ status: 200, json: {} }));
    const baseUrl = fake.baseUrl;
    await fake.close();
    const client = createCivitaiClient({ baseUrl, apiKey: null, rateLimit: false, clock: recordingClock(), retry: { retries: 2 } });
    await expect(client.getModelVersionByHash(SHA)).rejects.toMatchObject({ code: "CIVITAI_NETWORK", transient: true });
  });

  it("the API key goes only in the Authorization header, never in the URL or messages", async () => {
    const { client, requests } = await setup(() => ({ status: 500, json: { error: "boom" } }), { apiKey: KEY, retry: { retries: 1, baseDelayMs: 1 } });
    expect(client.authenticated).toBe(true);
    const error = (await client.getModelVersionByHash(SHA).catch((e: unknown) => e)) as CivitaiError;
    for (const r of requests) {
      expect(r.headers.authorization).toBe(`Bearer ${KEY}`);
      expect(r.url).not.toContain(KEY);
    }
    expect(error.message).not.toContain(KEY);
    expect(error.url).not.toContain(KEY);
    expect(JSON.stringify(error)).not.toContain(KEY);
  });

  it("an error body that echoes our request (Authorization header included) never puts the key in a message", async () => {
    // A proxy that answers errors with a dump of the request it got, as some do.
    const echo = (status: number) => (req: RecordedRequest) => ({ status, text: `bad request\nAuthorization: ${String(req.headers.authorization)}\nx-echo: token=${String(req.headers.authorization)}` });
    const jsonEcho = (req: RecordedRequest) => ({ status: 400, json: { error: `rejected ${JSON.stringify(req.headers)}` } });
    for (const handler of [echo(400), echo(418), echo(502), jsonEcho]) {
      const { client } = await setup(handler, { apiKey: KEY, retry: { retries: 0, baseDelayMs: 1 } });
      const error = (await client.getModelVersionByHash(SHA).catch((e: unknown) => e)) as CivitaiError;
      expect(error).toBeInstanceOf(CivitaiError);
      expect(error.message).toContain("[redacted]");
      expect(error.message).not.toContain(KEY);
      expect(error.message).not.toContain(KEY.slice(3));
      await close?.();
      close = undefined;
    }
  });

  it("401 says the key was refused; without a key it says one is needed", async () => {
    const withKey = await setup(() => ({ status: 401, json: { error: "Unauthorized" } }), { apiKey: KEY });
    await expect(withKey.client.getModel(1)).rejects.toMatchObject({ code: "CIVITAI_UNAUTHORIZED", message: expect.stringContaining("API key was refused") });
    await close?.();
    const without = await setup(() => ({ status: 401, json: { error: "Unauthorized" } }));
    await expect(without.client.getModel(1)).rejects.toMatchObject({ code: "CIVITAI_UNAUTHORIZED", message: expect.stringContaining("set CIVITAI_API_KEY") });
  });

  it("400 carries the server's message and is not retried", async () => {
    const { client, requests } = await setup(() => ({ status: 400, json: { error: "Invalid hash: XYZ" } }));
    await expect(client.getModelVersionByHash("ABCDEF01")).rejects.toMatchObject({ code: "CIVITAI_BAD_REQUEST", message: expect.stringContaining("Invalid hash: XYZ") });
    expect(requests).toHaveLength(1);
    await expect(client.getModelVersionByHash("not-a-hash")).rejects.toMatchObject({ code: "CIVITAI_INVALID_ARGUMENT" });
  });

  it("bulk look-up sends at most 100 SHA-256s a call and maps answers back to hashes", async () => {
    const hashes = Array.from({ length: 250 }, (_, i) => i.toString(16).padStart(64, "0"));
    hashes[7] = SHA.toLowerCase();
    const { client, requests } = await setup((req) => {
      const asked = JSON.parse(req.body) as string[];
      return { status: 200, json: asked.includes(SHA) ? [versionJson] : [] };
    });
    const batches: [number, number][] = [];
    const found = await client.getModelVersionsByHashes([...hashes, hashes[0]!], { onBatch: (d, t) => batches.push([d, t]) });
    expect(requests.map((r) => [r.method, r.url, (JSON.parse(r.body) as string[]).length])).toEqual([
      ["POST", "/api/v1/model-versions/by-hash", 100],
      ["POST", "/api/v1/model-versions/by-hash", 100],
      ["POST", "/api/v1/model-versions/by-hash", 50],
    ]);
    expect(requests[0]!.headers["content-type"]).toBe("application/json");
    expect(JSON.parse(requests[0]!.body)[7]).toBe(SHA);
    expect([...found.keys()]).toEqual([SHA.toLowerCase()]);
    expect(found.get(SHA.toLowerCase())?.id).toBe(128078);
    expect(batches).toEqual([[100, 250], [200, 250], [250, 250]]);
    await expect(client.getModelVersionsByHashes(["E6BB9EA85B"])).rejects.toMatchObject({ code: "CIVITAI_INVALID_ARGUMENT" });
  });

  it("the client-side rate limit spaces requests out", async () => {
    const { client, clock } = await setup(() => ({ status: 200, json: versionJson }), { rateLimit: { requestsPerSecond: 1, burst: 2 } });
    for (let i = 0; i < 4; i++) await client.getModelVersionByHash(SHA);
    // Two from the burst, then about one second apart (less the little time that passed).
    expect(clock.sleeps).toHaveLength(2);
    for (const s of clock.sleeps) expect(s).toBeGreaterThan(900);
  });

  it("CIVITAI_BASE_URL and CIVITAI_API_KEY come from the environment", async () => {
    const fake = await startFakeCivitai(() => ({ status: 200, json: versionJson }));
    close = fake.close;
    const client = createCivitaiClient({ env: { CIVITAI_BASE_URL: `${fake.baseUrl}/`, CIVITAI_API_KEY: KEY }, rateLimit: false });
    expect(client.baseUrl).toBe(fake.baseUrl);
    expect(client.keySource).toBe("env");
    await client.getModelVersionByHash(SHA);
    expect(fake.requests[0]!.headers.authorization).toBe(`Bearer ${KEY}`);
  });
});
