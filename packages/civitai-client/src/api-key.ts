import { readFileSync } from "node:fs";
import { join } from "node:path";

/** Parses the few `.env` forms in use: `KEY=value`, `export KEY=value`, quotes, `#` comments. */
export function parseDotEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const rawLine of text.split(/\r?\n/)) {
    const line = rawLine.trim();
    if (!line || line.startsWith("#")) continue;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_.]*)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2) {
      const end = value.indexOf(quote, 1);
      value = end > 0 ? value.slice(1, end) : value.slice(1);
      if (quote === '"') value = value.replace(/\\n/g, "\n").replace(/\\"/g, '"');
    } else {
      const hash = value.search(/\s#/);
      if (hash >= 0) value = value.slice(0, hash);
      value = value.trim();
    }
    out[m[1]!] = value;
  }
  return out;
}

export interface ApiKeySource {
  key: string | undefined;
  /** Where it came from: the environment, a `.env` file (its path), or nowhere. */
  from: "env" | "dotenv" | "none";
  dotenvPath?: string;
}

/** `CIVITAI_API_KEY` from the environment, else from `.env` in `cwd`; an empty value counts as none. */
export function resolveApiKey(options: { env?: NodeJS.ProcessEnv; cwd?: string } = {}): ApiKeySource {
  const env = options.env ?? process.env;
  const fromEnv = env.CIVITAI_API_KEY?.trim();
  if (fromEnv) return { key: fromEnv, from: "env" };
  const dotenvPath = join(options.cwd ?? process.cwd(), ".env");
  let text: string;
  try {
    text = readFileSync(dotenvPath, "utf8");
  } catch {
    return { key: undefined, from: "none" };
  }
  const key = parseDotEnv(text).CIVITAI_API_KEY?.trim();
  return key ? { key, from: "dotenv", dotenvPath } : { key: undefined, from: "none" };
}

/** The origin to put `/api/v1/...` after: trailing slashes and an `/api/v1` suffix (the Python tool's form) removed. */
export function normalizeBaseUrl(url: string): string {
  return url.trim().replace(/\/+$/, "").replace(/\/api\/v1$/i, "");
}

/** Base URL from `CIVITAI_BASE_URL` (for tests and mirrors), else the public API. */
export function resolveBaseUrl(env: NodeJS.ProcessEnv = process.env): string {
  return normalizeBaseUrl(env.CIVITAI_BASE_URL?.trim() || "https://civitai.com");
}
