import { request, type Dispatcher } from "undici";
import type { z } from "zod";
import { normalizeBaseUrl, resolveApiKey, resolveBaseUrl } from "./api-key.js";
import { CivitaiError } from "./civitai-error.js";
import { realClock, TokenBucket, type Clock, type RateLimitOptions } from "./rate-limiter.js";
import { backoffDelay, parseRetryAfter, type RetryOptions } from "./retry-policy.js";
import { modelSchema, modelVersionListSchema, modelVersionSchema, type Model, type ModelVersion } from "./schemas.js";

export interface CivitaiClientOptions {
  /** API key; undefined reads `CIVITAI_API_KEY` or `.env`, null forces anonymous mode. */
  apiKey?: string | null;
  /** Origin of the API; default `CIVITAI_BASE_URL` or https://civitai.com. */
  baseUrl?: string;
  env?: NodeJS.ProcessEnv;
  /** Folder whose `.env` is read for the key; default the working folder. */
  cwd?: string;
  /** Per attempt, covering headers and body; default 15 s. */
  timeoutMs?: number;
  retry?: RetryOptions;
  /** Client-side token bucket; `false` turns it off. */
  rateLimit?: RateLimitOptions | false;
  dispatcher?: Dispatcher;
  clock?: Clock;
  random?: () => number;
  userAgent?: string;
  /** Told before each retry (the CLI can show "rate limited, retrying in 4 s"). */
  onRetry?: (info: RetryInfo) => void;
}

export interface RetryInfo {
  readonly attempt: number;
  readonly delayMs: number;
  readonly reason: string;
  readonly url: string;
}

/** A look-up that may find nothing: 404 is an answer, not an error. */
export type LookupResult<T> = { found: true; value: T } | { found: false; reason: string };

/** Most SHA-256s the bulk endpoint takes in one call. */
export const BULK_HASH_LIMIT = 100;

const SHA256_RE = /^[0-9a-fA-F]{64}$/;
const HASH_RE = /^[0-9a-fA-F]{8,64}$/;

interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  /** The parsed body of a 2xx answer. */
  json?: unknown;
}

function header(headers: RawResponse["headers"], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function looksLikeHtml(text: string, contentType: string | undefined): boolean {
  return (contentType ?? "").includes("text/html") || /^\s*<(!doctype|html|head|body)/i.test(text);
}

/**
 * The part of an error body worth showing. A server (or a proxy) may echo the request back,
 * our `Authorization` header included: the key and any bearer token or authorization value are
 * redacted before a byte of the body reaches a message.
 */
function serverMessage(text: string, apiKey: string | undefined): string {
  const redacted = (apiKey ? text.split(apiKey).join("[redacted]") : text)
    .replace(/(authorization["']?\s*[:=]\s*["']?)(?:bearer\s+)?[^\s"',;}\]]+/gi, "$1[redacted]")
    .replace(/\bbearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]+/gi, "Bearer [redacted]");
  try {
    const body = JSON.parse(redacted) as { error?: unknown; message?: unknown };
    const m = typeof body.error === "string" ? body.error : typeof body.message === "string" ? body.message : undefined;
    if (m) return m.slice(0, 200);
  } catch {
    // not JSON
  }
  return redacted.replace(/\s+/g, " ").trim().slice(0, 120);
}

class TransientFailure {
  constructor(
    readonly error: CivitaiError,
    readonly retryAfterMs?: number,
  ) {}
}

/**
 * A CivitAI REST v1 client on undici: typed, validated answers (unknown fields kept), 404 as
 * "not found", retries with exponential backoff and jitter on 429/5xx/network/timeouts/HTML
 * challenge pages (honouring Retry-After), a client-side rate limit, and the key only ever in
 * the `Authorization: Bearer` header.
 */
export class CivitaiClient {
  readonly baseUrl: string;
  /** Whether an API key is configured (anonymous look-ups work too). */
  readonly authenticated: boolean;
  /** Where the key came from, for the CLI's status line. */
  readonly keySource: "option" | "env" | "dotenv" | "none";
  readonly #apiKey: string | undefined;
  readonly #options: CivitaiClientOptions;
  readonly #clock: Clock;
  readonly #bucket: TokenBucket | undefined;

  constructor(options: CivitaiClientOptions = {}) {
    this.#options = options;
    this.#clock = options.clock ?? realClock;
    if (options.apiKey === null) {
      this.#apiKey = undefined;
      this.keySource = "none";
    } else if (options.apiKey) {
      this.#apiKey = options.apiKey;
      this.keySource = "option";
    } else {
      const found = resolveApiKey({ ...(options.env ? { env: options.env } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) });
      this.#apiKey = found.key;
      this.keySource = found.from;
    }
    this.authenticated = this.#apiKey !== undefined;
    this.baseUrl = options.baseUrl ? normalizeBaseUrl(options.baseUrl) : resolveBaseUrl(options.env);
    this.#bucket = options.rateLimit === false ? undefined : new TokenBucket(options.rateLimit ?? {}, this.#clock);
  }

  /** `GET /api/v1/model-versions/by-hash/{hash}`: any hash CivitAI stores (SHA256, AutoV1/V2/V3, CRC32, BLAKE3). */
  async getModelVersionByHash(hash: string): Promise<LookupResult<ModelVersion>> {
    if (!HASH_RE.test(hash)) throw new CivitaiError("CIVITAI_INVALID_ARGUMENT", `not a hash CivitAI knows: ${JSON.stringify(hash.slice(0, 80))}`);
    return this.#get(`/api/v1/model-versions/by-hash/${hash.toUpperCase()}`, modelVersionSchema);
  }

  /** `GET /api/v1/model-versions/{id}`. */
  async getModelVersion(id: number): Promise<LookupResult<ModelVersion>> {
    return this.#get(`/api/v1/model-versions/${this.#id(id)}`, modelVersionSchema);
  }

  /** `GET /api/v1/models/{id}`. */
  async getModel(id: number): Promise<LookupResult<Model>> {
    return this.#get(`/api/v1/models/${this.#id(id)}`, modelSchema);
  }

  /**
   * `POST /api/v1/model-versions/by-hash` in calls of at most 100 SHA-256s. Returns, for each
   * requested hash (lowercase) that CivitAI knows, the version whose file has it.
   */
  async getModelVersionsByHashes(sha256s: readonly string[], options: { onBatch?: (done: number, total: number) => void } = {}): Promise<Map<string, ModelVersion>> {
    for (const h of sha256s) if (!SHA256_RE.test(h)) throw new CivitaiError("CIVITAI_INVALID_ARGUMENT", `bulk look-up takes SHA-256s only, got ${JSON.stringify(h.slice(0, 80))}`);
    const wanted = [...new Set(sha256s.map((h) => h.toUpperCase()))];
    const found = new Map<string, ModelVersion>();
    for (let i = 0; i < wanted.length; i += BULK_HASH_LIMIT) {
      const batch = wanted.slice(i, i + BULK_HASH_LIMIT);
      const versions = await this.#send("POST", "/api/v1/model-versions/by-hash", modelVersionListSchema, JSON.stringify(batch));
      const inBatch = new Set(batch);
      if (versions.found) {
        for (const version of versions.value) {
          for (const file of version.files ?? []) {
            const sha = file.hashes?.SHA256?.toUpperCase();
            if (sha && inBatch.has(sha) && !found.has(sha.toLowerCase())) found.set(sha.toLowerCase(), version);
          }
        }
      }
      options.onBatch?.(Math.min(wanted.length, i + batch.length), wanted.length);
    }
    return found;
  }

  #id(id: number): number {
    if (!Number.isSafeInteger(id) || id < 0) throw new CivitaiError("CIVITAI_INVALID_ARGUMENT", `not a CivitAI id: ${String(id)}`);
    return id;
  }

  #get<S extends z.ZodType>(path: string, schema: S): Promise<LookupResult<z.infer<S>>> {
    return this.#send("GET", path, schema);
  }

  async #send<S extends z.ZodType>(method: "GET" | "POST", path: string, schema: S, body?: string): Promise<LookupResult<z.infer<S>>> {
    const url = `${this.baseUrl}${path}`;
    const retry = this.#options.retry ?? {};
    const retries = Math.max(0, retry.retries ?? 4);
    const maxRetryAfter = retry.maxRetryAfterMs ?? 120_000;
    for (let attempt = 0; ; attempt++) {
      await this.#bucket?.take();
      const outcome = await this.#attempt(method, url, path, body).catch((error: unknown) => {
        if (error instanceof TransientFailure) return error;
        throw error;
      });
      if (!(outcome instanceof TransientFailure)) return this.#interpret(outcome, method, path, url, schema);
      const { error, retryAfterMs } = outcome;
      if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfter) {
        throw new CivitaiError(error.code, `${error.message}; server asks to retry after ${Math.ceil(retryAfterMs / 1000)} s`, { ...(error.status ? { status: error.status } : {}), url, transient: true });
      }
      if (attempt >= retries) {
        throw new CivitaiError(error.code, `${error.message} (gave up after ${attempt + 1} attempts)`, { ...(error.status ? { status: error.status } : {}), url, transient: true, cause: error.cause });
      }
      const delayMs = Math.max(backoffDelay(attempt, retry, this.#options.random), retryAfterMs ?? 0);
      this.#options.onRetry?.({ attempt: attempt + 1, delayMs, reason: error.message, url });
      await this.#clock.sleep(delayMs);
    }
  }

  /** One HTTP exchange; a transient failure is thrown as `TransientFailure`. */
  async #attempt(method: "GET" | "POST", url: string, path: string, body: string | undefined): Promise<RawResponse> {
    const timeoutMs = this.#options.timeoutMs ?? 15_000;
    const headers: Record<string, string> = { accept: "application/json", "user-agent": this.#options.userAgent ?? "stmerge-civitai-client" };
    if (body !== undefined) headers["content-type"] = "application/json";
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    const label = `CivitAI ${method} ${path}`;
    try {
      const res = await request(url, {
        method,
        headers,
        ...(body !== undefined ? { body } : {}),
        ...(this.#options.dispatcher ? { dispatcher: this.#options.dispatcher } : {}),
        signal: AbortSignal.timeout(timeoutMs),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
      });
      const text = await res.body.text();
      const response: RawResponse = { status: res.statusCode, headers: res.headers, text };
      const contentType = header(res.headers, "content-type");
      if (looksLikeHtml(text, contentType) && (res.statusCode < 300 || res.statusCode === 403 || res.statusCode === 429 || res.statusCode >= 500)) {
        throw new TransientFailure(new CivitaiError("CIVITAI_BAD_RESPONSE", `${label}: got an HTML page instead of JSON (HTTP ${res.statusCode}; a Cloudflare challenge or an outage page?)`, { status: res.statusCode, url, transient: true }), parseRetryAfter(header(res.headers, "retry-after"), this.#clock.now()));
      }
      if (res.statusCode === 429) {
        throw new TransientFailure(new CivitaiError("CIVITAI_RATE_LIMITED", `${label}: rate limited by CivitAI (HTTP 429)`, { status: 429, url, transient: true }), parseRetryAfter(header(res.headers, "retry-after"), this.#clock.now()));
      }
      if (res.statusCode >= 500) {
        throw new TransientFailure(new CivitaiError("CIVITAI_SERVER_ERROR", `${label}: CivitAI server error HTTP ${res.statusCode} (${serverMessage(text, this.#apiKey)})`, { status: res.statusCode, url, transient: true }), parseRetryAfter(header(res.headers, "retry-after"), this.#clock.now()));
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        try {
          response.json = JSON.parse(text);
        } catch {
          throw new TransientFailure(new CivitaiError("CIVITAI_BAD_RESPONSE", `${label}: answer is not valid JSON (${text.length} bytes)`, { status: res.statusCode, url, transient: true }));
        }
      }
      return response;
    } catch (error) {
      if (error instanceof TransientFailure) throw error;
      const e = error as { name?: string; code?: string; message?: string };
      if (e.name === "TimeoutError" || e.name === "AbortError" || e.code === "UND_ERR_HEADERS_TIMEOUT" || e.code === "UND_ERR_BODY_TIMEOUT") {
        throw new TransientFailure(new CivitaiError("CIVITAI_TIMEOUT", `${label}: no answer within ${timeoutMs} ms`, { url, transient: true, cause: error }));
      }
      throw new TransientFailure(new CivitaiError("CIVITAI_NETWORK", `${label}: network error (${e.code ?? e.message ?? String(error)})`, { url, transient: true, cause: error }));
    }
  }

  #interpret<S extends z.ZodType>(res: RawResponse, method: string, path: string, url: string, schema: S): LookupResult<z.infer<S>> {
    const label = `CivitAI ${method} ${path}`;
    if (res.status === 404) return { found: false, reason: serverMessage(res.text, this.#apiKey) || "not found" };
    if (res.status === 401 || res.status === 403) {
      const why = this.authenticated ? "the API key was refused" : "this needs an API key (set CIVITAI_API_KEY)";
      throw new CivitaiError("CIVITAI_UNAUTHORIZED", `${label}: ${why} (HTTP ${res.status})`, { status: res.status, url });
    }
    if (res.status === 400) throw new CivitaiError("CIVITAI_BAD_REQUEST", `${label}: CivitAI rejected the request (${serverMessage(res.text, this.#apiKey)})`, { status: 400, url });
    if (res.status < 200 || res.status >= 300) throw new CivitaiError("CIVITAI_HTTP_ERROR", `${label}: unexpected HTTP ${res.status} (${serverMessage(res.text, this.#apiKey)})`, { status: res.status, url });
    const parsed = schema.safeParse(res.json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue ? `${issue.path.join(".") || "(root)"}: ${issue.message}` : "invalid";
      throw new CivitaiError("CIVITAI_BAD_RESPONSE", `${label}: answer does not have the expected shape (${where})`, { status: res.status, url });
    }
    return { found: true, value: parsed.data };
  }
}

export function createCivitaiClient(options: CivitaiClientOptions = {}): CivitaiClient {
  return new CivitaiClient(options);
}
