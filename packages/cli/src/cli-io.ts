import { isAbsolute } from "node:path";

/** Where the CLI writes and what it reads from its environment; injectable so tests run commands in-process. */
export interface CliIo {
  readonly stdout: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  readonly stderr: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
  /** Clock and timer for progress drawing; tests inject a manual one (default: Date.now and unref'd timers). */
  readonly clock?: { now(): number; schedule(fn: () => void, ms: number): () => void };
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: invocationFolder(process.env, process.cwd()) };
}

/** The root package's scripts that run the CLI (`pnpm stmerge ...`, `pnpm demo`). */
const CLI_SCRIPTS = new Set(["stmerge", "demo"]);

/**
 * The folder relative paths are resolved from. `pnpm stmerge x.safetensors` runs the script in the
 * repository root, but pnpm (and npm) keep the folder it was typed in as INIT_CWD; that one is
 * used, only when the running script is the CLI's own (a test or tool that merely inherits
 * INIT_CWD keeps its working folder).
 */
export function invocationFolder(env: Readonly<Record<string, string | undefined>>, cwd: string): string {
  const init = env.INIT_CWD;
  return init && isAbsolute(init) && CLI_SCRIPTS.has(env.npm_lifecycle_event ?? "") ? init : cwd;
}

/** Collects output in memory; used by tests and by `--json` capture. */
export function memoryIo(overrides: Partial<Pick<CliIo, "env" | "cwd" | "stdin">> = {}): CliIo & { out(): string; err(): string } {
  let out = "";
  let err = "";
  return {
    stdout: { write: (c: string) => (out += c), isTTY: false },
    stderr: { write: (c: string) => (err += c), isTTY: false },
    env: overrides.env ?? {},
    cwd: overrides.cwd ?? process.cwd(),
    ...(overrides.stdin ? { stdin: overrides.stdin } : {}),
    out: () => out,
    err: () => err,
  };
}
