/** Where the CLI writes and what it reads from its environment; injectable so tests run commands in-process. */
export interface CliIo {
  readonly stdout: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  readonly stderr: { write(chunk: string): unknown; isTTY?: boolean; columns?: number };
  readonly stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly cwd: string;
}

export function processIo(): CliIo {
  return { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env, cwd: process.cwd() };
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
