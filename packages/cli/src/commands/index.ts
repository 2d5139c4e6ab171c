import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { registerDemoCommand } from "./demo.js";
import { registerInspectCommand } from "./inspect.js";
import { registerConvertCommand } from "./convert.js";
import { registerVerifyCommand } from "./verify.js";
import { registerAuditCommand } from "./audit.js";
import { registerHashCommand } from "./hash.js";
import { registerCacheCommand } from "./cache.js";
import { registerScanCommand } from "./scan.js";
import { registerMergeCommand } from "./merge.js";
import { registerExtractVaeCommand } from "./extract-vae.js";
import { registerLibraryCommand } from "./library.js";
import { registerLoraCommand } from "./lora.js";
import { registerEditCommand } from "./edit.js";

/** Every command of the CLI; each lives in its own file and adds itself here with one line. */
export function registerCommands(program: Command, ctx: CliContext): void {
  registerInspectCommand(program, ctx);
  registerConvertCommand(program, ctx);
  registerVerifyCommand(program, ctx);
  registerAuditCommand(program, ctx);
  registerDemoCommand(program, ctx);
  registerHashCommand(program, ctx);
  registerCacheCommand(program, ctx);
  registerScanCommand(program, ctx);
  registerMergeCommand(program, ctx);
  registerExtractVaeCommand(program, ctx);
  registerLibraryCommand(program, ctx);
  registerLoraCommand(program, ctx);
  registerEditCommand(program, ctx);
}
