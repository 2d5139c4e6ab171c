// The CLI's public API: run it in-process (with injectable I/O for tests and embedders), and its
// error protocol. Rendering and command internals are not part of it.
export { buildProgram, runCli, type RunCliOptions } from "./run-cli.js";
export { type CliIo, invocationFolder, memoryIo, processIo } from "./cli-io.js";
export { CliError, describeError, errorObject, EXIT, ExitRequest } from "./cli-error.js";
