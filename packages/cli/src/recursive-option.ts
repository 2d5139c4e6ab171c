import { Option, type Command } from "commander";

/** `--recursive` on every command that walks folders; `--recurse` (the earlier spelling) still works, hidden from help. */
export function addRecursiveOption(command: Command, description = "include subfolders"): Command {
  return command.option("--recursive", description).addOption(new Option("--recurse", description).hideHelp());
}

/** Whether either spelling was given. */
export function isRecursive(options: { readonly recursive?: boolean; readonly recurse?: boolean }): boolean {
  return Boolean(options.recursive || options.recurse);
}
