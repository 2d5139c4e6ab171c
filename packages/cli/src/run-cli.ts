import { Command, CommanderError } from "commander";
import { processIo, type CliIo } from "./cli-io.js";
import { createCliContext } from "./cli-context.js";
import { describeError, EXIT } from "./cli-error.js";
import { registerCommands } from "./commands/index.js";
import { CLI_VERSION } from "./version.js";

/** Exit code a command action asks for (audit: 1 unsafe, 2 unreadable) without throwing. */
export class ExitRequest {
  constructor(readonly exitCode: number) {}
}

export function buildProgram(io: CliIo): Command {
  const ctx = createCliContext(io);
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

/** Runs the CLI with `argv` (without node and script) and resolves to the process exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<number> {
  const program = buildProgram(io);
  const debug = argv.includes("--debug");
  try {
    await program.parseAsync([...argv], { from: "user" });
    const requested = (program as Command & { stmergeExitCode?: number }).stmergeExitCode;
    return requested ?? EXIT.ok;
  } catch (error) {
    if (error instanceof ExitRequest) return error.exitCode;
    if (error instanceof CommanderError) {
      // Help and --version "errors" are normal exits; the rest are usage errors already printed.
      if (error.code === "commander.helpDisplayed" || error.code === "commander.version" || error.code === "commander.help") return EXIT.ok;
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    const { exitCode, text } = describeError(error, debug);
    io.stderr.write(`${text}\n`);
    return exitCode;
  }
}
