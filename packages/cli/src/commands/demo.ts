import { mkdtemp, mkdir, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { CliError } from "../cli-error.js";
import { writeDemoLegacyCheckpoint, writeDemoSafetensorsModels } from "../demo/write-demo-models.js";
import { formatBytes } from "../format.js";
import { inspectSafetensors } from "./inspect.js";

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description("write small sample models and run the main workflow on them, printing each step")
    .argument("[dir]", "folder for the sample models (default: a fresh temp folder)")
    .option("--json", "print a JSON summary of each step")
    .addHelpText("after", "\nExamples:\n  $ stmerge demo\n  $ stmerge demo ./stmerge-demo")
    .action(async (dirArg: string | undefined, _options: unknown, command: Command) => {
      const out = ctx.output(command);
      const dir = dirArg ? resolve(ctx.io.cwd, dirArg) : await mkdtemp(join(tmpdir(), "stmerge-demo-"));
      if (dirArg) {
        await mkdir(dir, { recursive: true });
        if ((await readdir(dir)).length > 0) throw new CliError("DEMO_DIR_NOT_EMPTY", `${dir}: folder is not empty; give an empty or new folder`, { file: dir });
      }
      out.banner([]);
      const steps: Record<string, unknown>[] = [];
      out.line(`Demo folder: ${dir}`);
      out.line("");
      out.line("1. Writing sample models: SD1.5 key layout with shrunk shapes");
      const legacy = await writeDemoLegacyCheckpoint(dir);
      out.line(`   ${legacy.path} (${formatBytes(legacy.bytes)}) legacy PyTorch checkpoint, F32, with EMA weights`);
      const models = await writeDemoSafetensorsModels(dir);
      for (const m of models) out.line(`   ${m.path} (${formatBytes(m.bytes)}) safetensors, F16`);
      steps.push({ step: "write-models", legacy, models });
      out.line("");
      out.line("2. Inspecting the first model (header only)");
      const first = models[0]!;
      const report = await inspectSafetensors(first.path, 3);
      out.line(`   ${report.tensorCount} tensors, ${report.parameterCount} parameters, dtypes ${Object.entries(report.dtypes).map(([d, n]) => `${d} ×${n}`).join(", ")}`);
      steps.push({ step: "inspect", report: { ...report, keys: undefined } });
      out.line("");
      out.line(`Done. Everything is in ${dir}`);
      out.result({ dir, steps });
    });
}
