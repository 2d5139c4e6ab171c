import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { resolveColor, resolveUnicode } from "../theme.js";
import { escapeControl } from "../terminal-text.js";

export function registerEditCommand(program: Command, ctx: CliContext): void {
  program
    .command("edit")
    .description("edit a merge manifest in a full-screen terminal editor (weights, method, block weights, VAE, output) with live validation")
    .argument("<manifest>", "merge manifest to edit (saved in place, atomically, after showing the diff)")
    .option("--plugin <module...>", "load merge-method plugins so their methods and parameters can be chosen (a manifest's plugins never load)")
    .addHelpText("after", "\nKeys: arrows/Tab move, +/- change (*/_ coarse), n normalize, a add a model, s save, m merge, q quit, d dry-run plan, ? help.\n\nExample:\n  $ stmerge edit models/merge_manifest.json")
    .action(async (manifest: string, options: { plugin?: string[] }, cmd: Command) => {
      const { io } = ctx;
      const stdin = io.stdin as (NodeJS.ReadStream & { setRawMode?: unknown }) | undefined;
      if (!stdin?.isTTY || !io.stdout.isTTY || typeof stdin.setRawMode !== "function") {
        throw new CliError("NOT_A_TTY", `${escapeControl(manifest)}: stmerge edit needs an interactive terminal; edit the manifest JSON in a text editor instead and check it with \`stmerge merge --manifest ${escapeControl(manifest)} --dry-run\``, { exitCode: 2, file: manifest });
      }
      const colorFlag = (cmd.optsWithGlobals() as { color?: boolean }).color !== false;
      // ink draws nothing but a last frame when CI or CONTINUOUS_INTEGRATION is set (it assumes a
      // log, and reads them when it loads, below); at the interactive terminal checked above the
      // user needs the live editor whatever those say.
      for (const key of ["CI", "CONTINUOUS_INTEGRATION"]) if (process.env[key] !== undefined) process.env[key] = "false";
      // The editor (ink, React, yoga) loads only here: other commands do not pay its start-up cost.
      const { runEditor } = await import("../edit/run-editor.js");
      await runEditor({
        manifest,
        cwd: io.cwd,
        plugins: options.plugin ?? [],
        stdin: stdin,
        stdout: io.stdout as NodeJS.WriteStream,
        color: resolveColor(io.env, colorFlag, true),
        unicode: resolveUnicode(io.env),
        signal: ctx.signal,
        toolVersion: ctx.version,
      });
    });
}
