import { Command, CommanderError } from "commander";
import { fileSystemError } from "@stmerge/core-tensors";
import { processIo, type CliIo } from "./cli-io.js";
import { createCliContext } from "./cli-context.js";
import { describeError, errorObject, EXIT, ExitRequest } from "./cli-error.js";
import { registerCommands } from "./commands/index.js";
import { createInterrupts, InterruptedError, interruptedLine, SIGNAL_EXIT_CODES, type Interrupts, type SignalTarget } from "./interrupt.js";
import { CLI_VERSION } from "./version.js";


export function buildProgram(io: CliIo, signal?: AbortSignal): Command {
  const ctx = createCliContext(io, signal);
  const program = new Command()
    .name("stmerge")
    .description("Merge, convert, verify, hash and deduplicate Stable Diffusion model files — safely, in constant memory.")
    .version(CLI_VERSION, "-V, --version", "print the version")
    .option("--debug", "print stack traces and internal details on errors")
    .option("-q, --quiet", "print only results and errors")
    .option("--no-color", "disable colors")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: (s, write) => write(s.startsWith("error:") ? `stmerge: ${s.slice(7)}` : s),
    })
    .exitOverride();
  program.addHelpText(
    "after",
    `
Examples:
  $ stmerge demo                          run the whole workflow on small generated models
  $ stmerge inspect model.safetensors     tensors, dtypes, parameters, metadata
  $ stmerge convert old.ckpt              legacy pickle checkpoint → safetensors, no code executed
  $ stmerge scan ./models -o merge.json   write a merge manifest
  $ stmerge merge --manifest merge.json   merge in constant memory`,
  );
  registerCommands(program, ctx);
  for (const command of program.commands) command.exitOverride().configureOutput(program.configureOutput());
  return program;
}

export interface RunCliOptions {
  /**
   * Where SIGINT/SIGTERM/SIGHUP come from. Default: the real process when `io` is the process's
   * own (the stmerge binary), none for in-process callers (tests pass `interrupts` instead).
   */
  readonly signals?: SignalTarget | false;
  /** An interrupt controller of the caller's (tests interrupt in-process through it). */
  readonly interrupts?: Interrupts;
  /**
   * The signal of an outer run this one is part of (the demo's steps): when it aborts, this run
   * stops too, and says nothing about it; the outer run prints the one line.
   */
  readonly parentSignal?: AbortSignal;
}

function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end < 0 ? argv : argv.slice(0, end)).includes("--json");
}

/** Runs the CLI with `argv` (without node and script) and resolves to the process exit code. */
export async function runCli(argv: readonly string[], io?: CliIo, options: RunCliOptions = {}): Promise<number> {
  const signals = options.signals ?? (io === undefined ? (process as unknown as SignalTarget) : false);
  const cliIo = io ?? processIo();
  const interrupts = options.interrupts ?? createInterrupts({ ...(signals ? { target: signals } : {}), writeErr: (t) => cliIo.stderr.write(t) });
  const { parentSignal } = options;
  const fromParent = () => interrupts.interrupt(parentSignal?.reason instanceof InterruptedError ? parentSignal.reason.signalName : "SIGINT");
  if (parentSignal?.aborted) fromParent();
  else parentSignal?.addEventListener("abort", fromParent, { once: true });
  try {
    const code = await runProgram(argv, cliIo, interrupts, parentSignal !== undefined);
    // A worker or handle an interrupted library left behind must not keep the process alive.
    if (interrupts.received && signals) setTimeout(() => signals.exit(code), 1500).unref();
    return code;
  } finally {
    parentSignal?.removeEventListener("abort", fromParent);
    if (!options.interrupts) interrupts.dispose();
  }
}

async function runProgram(argv: readonly string[], io: CliIo, interrupts: Interrupts, nested: boolean): Promise<number> {
  const program = buildProgram(io, interrupts.signal);
  const debug = argv.includes("--debug");
  const json = wantsJson(argv);
  let commandName: string | undefined;
  program.hook("preAction", (_root, action) => {
    commandName = action.parent && action.parent !== program ? `${action.parent.name()} ${action.name()}` : action.name();
  });
  const interrupted = (): number => {
    if (nested) return SIGNAL_EXIT_CODES[interrupts.received!];
    const line = interruptedLine(interrupts, commandName, (program as Command & { stmergeInterruptKept?: string }).stmergeInterruptKept);
    if (json) io.stdout.write(`${JSON.stringify({ error: { code: "INTERRUPTED", message: line.replace(/^stmerge: /, ""), file: null } })}\n`);
    io.stderr.write(`${line}\n`);
    return SIGNAL_EXIT_CODES[interrupts.received!];
  };
  // Bare `stmerge`: the help, on stdout, as a successful answer to "what can this do?".
  if (!argv.some((a) => !a.startsWith("-")) && !argv.some((a) => ["-h", "--help", "-V", "--version"].includes(a))) {
    program.outputHelp();
    return EXIT.ok;
  }
  let usageMessage = "";
  program.configureOutput({ ...program.configureOutput(), outputError: (s, write) => {
    usageMessage = s.replace(/^error: /, "").split("\n")[0]!.trim();
    write(s.startsWith("error:") ? `stmerge: ${s.slice(7)}` : s);
  } });
  for (const command of program.commands) command.configureOutput(program.configureOutput());
  try {
    await program.parseAsync([...argv], { from: "user" });
    if (interrupts.received) return interrupted();
    const requested = (program as Command & { stmergeExitCode?: number }).stmergeExitCode;
    return requested ?? EXIT.ok;
  } catch (caught) {
    if (interrupts.received) return interrupted();
    if (caught instanceof ExitRequest) return caught.exitCode;
    if (caught instanceof CommanderError) {
      // Help and --version "errors" are normal exits; the rest are usage errors already printed.
      if (caught.code === "commander.helpDisplayed" || caught.code === "commander.version" || caught.code === "commander.help") return EXIT.ok;
      if (caught.exitCode === 0) return EXIT.ok;
      if (json) io.stdout.write(`${JSON.stringify({ error: { code: "USAGE", message: usageMessage || caught.message.replace(/^error: /, ""), file: null } })}\n`);
      return EXIT.usage;
    }
    // A raw Node error that slipped through a library still becomes one typed line naming its path.
    const errno = caught as NodeJS.ErrnoException;
    const error = typeof errno?.path === "string" ? await fileSystemError(caught, errno.path) : caught;
    const { exitCode, text } = describeError(error, debug);
    if (json) io.stdout.write(`${JSON.stringify(errorObject(error, text))}\n`);
    io.stderr.write(`${text}\n`);
    return exitCode;
  }
}
