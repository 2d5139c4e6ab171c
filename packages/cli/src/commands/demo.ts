import { mkdtemp, mkdir, readdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import type { Command } from "commander";
import type { CliContext } from "../cli-context.js";
import { selectKernelBackend } from "@stmerge/core-tensors";
import { bannerLines } from "../banner.js";
import { CliError } from "../cli-error.js";
import { memoryIo, type CliIo } from "../cli-io.js";
import { writeDemoLegacyCheckpoint, writeDemoSafetensorsModels } from "../demo/write-demo-models.js";
import { formatBytes } from "../format.js";
// run-cli imports this module too; the cycle is safe because runCli is only called inside the action.
import { runCli } from "../run-cli.js";

interface DemoStep {
  readonly title: string;
  readonly argv: readonly string[];
  /** Exit code the step must end with (audit of a clean file: 0). */
  readonly expectExit?: number;
}

interface DemoStepResult {
  readonly title: string;
  readonly command: string;
  readonly exitCode: number;
  readonly output?: unknown;
}

/**
 * The main workflow as a user would type it: each step is a real stmerge command run in-process
 * on the demo folder, printed with its command line and its own output.
 */
function demoSteps(dir: string): DemoStep[] {
  const ckpt = join(dir, "legacy", "demo-base.ckpt");
  const converted = join(dir, "models", "demo-base.safetensors");
  const manifest = join(dir, "merge.json");
  const merged = join(dir, "output", "demo-merge.safetensors");
  return [
    { title: "Audit the legacy checkpoint: list every pickle global without executing anything", argv: ["audit", ckpt] },
    { title: "Convert it to safetensors (state dict unwrapped, EMA pruned, every tensor checked before the rename)", argv: ["convert", ckpt, "-o", converted] },
    { title: "Verify the conversion tensor by tensor against the original", argv: ["verify", ckpt, converted] },
    { title: "Scan the models folder into a merge manifest (headers only)", argv: ["scan", join(dir, "models"), "-o", manifest, "--compute-hashes"] },
    { title: "Show the merge plan without reading any tensor", argv: ["merge", "--manifest", manifest, "--dry-run"] },
    { title: "Merge tensor by tensor in constant memory", argv: ["merge", "--manifest", manifest, "-o", merged] },
    { title: "Inspect the merged model", argv: ["inspect", merged, "-n", "3"] },
    { title: "Hash the merged model (SHA-256, AutoV1/V2/V3, CRC32, BLAKE3) and remember it in the demo cache", argv: ["hash", merged] },
  ];
}

export function registerDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command("demo")
    .description("write small sample models and run the main workflow on them (audit, convert, verify, scan, merge, inspect, hash), printing each step")
    .argument("[dir]", "folder for the sample models (default: a fresh temp folder)")
    .option("--json", "print a JSON summary of each step")
    .addHelpText("after", "\nExamples:\n  $ stmerge demo\n  $ stmerge demo ./stmerge-demo\n  $ stmerge demo --json | jq '.steps[].command'")
    .action(async (dirArg: string | undefined, _options: unknown, command: Command) => {
      const out = ctx.output(command);
      const dir = dirArg ? resolve(ctx.io.cwd, dirArg) : await mkdtemp(join(tmpdir(), "stmerge-demo-"));
      if (dirArg) {
        await mkdir(dir, { recursive: true });
        if ((await readdir(dir)).length > 0) throw new CliError("DEMO_DIR_NOT_EMPTY", `${dir}: folder is not empty; give an empty or new folder`, { file: dir });
      }
      for (const sub of ["legacy", "models", "output"]) await mkdir(join(dir, sub), { recursive: true });
      // The demo keeps its own metadata cache so it never touches the user's, and prints one
      // banner for all its steps.
      const env = { ...ctx.io.env, STMERGE_CACHE: join(dir, "model_cache.json"), STMERGE_NO_BANNER: "1" };
      const compute = await selectKernelBackend({ device: "auto" });
      out.banner(await bannerLines({ ...ctx.io, env }, { compute }, (t) => out.warn(t)));
      await compute.backend.close();
      out.line(`stmerge demo: working in ${dir}`);
      out.line("");
      out.line("Writing sample models (the real SD1.5 key layout, shapes shrunk to a few MB):");
      const legacy = await writeDemoLegacyCheckpoint(join(dir, "legacy"));
      out.line(`  ${relative(dir, legacy.path)}  ${formatBytes(legacy.bytes)}  legacy PyTorch checkpoint, F32, with EMA weights and training counters`);
      const models = await writeDemoSafetensorsModels(join(dir, "models"));
      for (const m of models) out.line(`  ${relative(dir, m.path)}  ${formatBytes(m.bytes)}  safetensors, F16`);

      const results: DemoStepResult[] = [];
      for (const [index, step] of demoSteps(dir).entries()) {
        const shown = ["stmerge", ...step.argv.map((a) => (a.startsWith(dir) ? relative(dir, a) || "." : a))].join(" ");
        out.line("");
        out.line(`${index + 1}. ${step.title}`);
        out.line(`   $ ${shown}`);
        // Steps write into the same stdout/stderr as the demo, or into memory for --json.
        const captured = out.json ? memoryIo({ env, cwd: dir }) : undefined;
        const io: CliIo = captured ?? { ...ctx.io, env, cwd: dir };
        const argv = out.json ? [...step.argv, "--json"] : out.quiet ? ["--quiet", ...step.argv] : [...step.argv];
        const exitCode = await runCli(argv, io, { parentSignal: ctx.signal });
        // Interrupted: stop here; the demo's own run prints the one line about it.
        if (ctx.signal.aborted) return;
        let output: unknown;
        if (captured) {
          try {
            output = JSON.parse(captured.out());
          } catch {
            output = captured.out();
          }
        }
        results.push({ title: step.title, command: shown, exitCode, ...(captured ? { output } : {}) });
        if (exitCode !== (step.expectExit ?? 0)) {
          out.result({ dir, ok: false, steps: results });
          throw new CliError("DEMO_STEP_FAILED", `demo step ${index + 1} (${shown}) exited with ${exitCode}${captured ? `: ${captured.err().trim().split("\n").pop() ?? ""}` : ""}`);
        }
      }
      out.line("");
      out.line(`Done. Everything is in ${dir}`);
      out.result({ dir, ok: true, steps: results });
    });
}
