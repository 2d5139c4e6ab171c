import { runCli } from "@stmerge/cli";

const exitCode = await runCli(process.argv.slice(2));
process.exitCode = exitCode;
