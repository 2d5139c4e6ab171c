import { openTempPaths, removeOpenTempFilesSync } from "@stmerge/core-tensors";

export type InterruptSignalName = "SIGINT" | "SIGTERM" | "SIGHUP";

/** Exit codes of the shell convention (128 + signal number). */
export const SIGNAL_EXIT_CODES: Readonly<Record<InterruptSignalName, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

const SIGNALS: readonly InterruptSignalName[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/** The abort reason of an interrupted run. */
export class InterruptedError extends Error {
  constructor(readonly signalName: InterruptSignalName) {
    super(`interrupted by ${signalName}`);
    this.name = "InterruptedError";
  }
}

/** The process surface the interrupt handling needs; injectable so tests need no real signals. */
export interface SignalTarget {
  on(event: InterruptSignalName, listener: () => void): unknown;
  off(event: InterruptSignalName, listener: () => void): unknown;
  exit(code: number): never;
}

/**
 * The CLI's one interruption mechanism. The first SIGINT/SIGTERM/SIGHUP aborts `signal`, which
 * every long operation receives: they stop between tensors or chunks and their sinks remove their
 * temp files as the error unwinds. A second signal exits at once, removing the temp files still
 * open synchronously first.
 */
export interface Interrupts {
  readonly signal: AbortSignal;
  /** The signal that interrupted the run, if one did. */
  readonly received: InterruptSignalName | undefined;
  /** Temp files that were being written when the interrupt came (the outputs not written). */
  readonly pendingOutputs: readonly string[];
  /** Aborts as if `name` was received (what the signal handlers call). */
  interrupt(name: InterruptSignalName): void;
  dispose(): void;
}

export function createInterrupts(options: { target?: SignalTarget; writeErr?: (text: string) => void } = {}): Interrupts {
  const controller = new AbortController();
  let received: InterruptSignalName | undefined;
  let pendingOutputs: readonly string[] = [];
  const { target, writeErr } = options;
  const interrupt = (name: InterruptSignalName): void => {
    if (received === undefined) {
      received = name;
      pendingOutputs = openTempPaths();
      controller.abort(new InterruptedError(name));
      return;
    }
    // A second signal: the user wants out now. Temp files go first, synchronously.
    const removed = removeOpenTempFilesSync();
    writeErr?.(`\nstmerge: interrupted again (${name}); exiting now${removed.length ? `, removed ${removed.length} temp file${removed.length === 1 ? "" : "s"}` : ""}\n`);
    (target ?? process).exit(SIGNAL_EXIT_CODES[received]);
  };
  const listeners = new Map<InterruptSignalName, () => void>();
  if (target) {
    for (const name of SIGNALS) {
      const listener = () => interrupt(name);
      listeners.set(name, listener);
      target.on(name, listener);
    }
  }
  return {
    signal: controller.signal,
    get received() {
      return received;
    },
    get pendingOutputs() {
      return pendingOutputs;
    },
    interrupt,
    dispose() {
      for (const [name, listener] of listeners) target?.off(name, listener);
      listeners.clear();
    },
  };
}

/** What an interrupted command keeps when no output was in progress (by command name). */
const KEPT_BY_COMMAND: Readonly<Record<string, string>> = {
  convert: "no output written",
  merge: "no output written",
  "extract-vae": "no output written",
  hash: "the hashes printed before it are complete",
  "cache add": "files hashed before it are saved in the cache",
  verify: "nothing was changed",
};

function shortList(paths: readonly string[]): string {
  const targets = paths.map((p) => p.replace(/\/\.([^/]+)\.[0-9a-f]{12}\.tmp$/, "/$1"));
  return targets.length <= 2 ? targets.join(" and ") : `${targets.slice(0, 2).join(", ")} and ${targets.length - 2} more`;
}

/**
 * The one line a user sees after an interrupt: what stopped and what was kept. Temp files still
 * open at this point (an operation that did not unwind through its sink) are removed here.
 */
export function interruptedLine(interrupts: Interrupts, command: string | undefined, keptByCommand?: string): string {
  removeOpenTempFilesSync();
  const what = command ? `${command} interrupted` : "interrupted";
  const outputs = interrupts.pendingOutputs;
  // A command that finished part of its work (a folder conversion) says what it kept itself.
  const kept = keptByCommand !== undefined ? keptByCommand : outputs.length
    ? `${shortList(outputs)} not written (partial temp file removed); inputs unchanged`
    : `${(command && KEPT_BY_COMMAND[command]) ?? "nothing partial left behind"}`;
  return `stmerge: ${what} (${interrupts.received ?? "signal"}); ${kept}`;
}
