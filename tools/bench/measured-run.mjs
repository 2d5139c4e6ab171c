// One timed run of a benchmark contender, shared by every bench script (merge, methods, many
// inputs, convert, LoRA). usage: import { measuredRun } from ".../tools/bench/measured-run.mjs"
import { spawnSync } from "node:child_process";

/**
 * Runs `cmd args` under /usr/bin/time and returns its wall seconds, peak RSS (MB), CPU seconds
 * (user + system, all threads) and stdout (trimmed); throws with its stderr when it fails.
 *
 * Before the clock starts, `sync` writes back what earlier runs left dirty in the page cache:
 * the torch baselines save without an fsync, and the kernel writes their 2–4 GB back up to 30 s
 * later (vm.dirty_expire_centisecs), in the middle of whichever run comes next. Each contender
 * then pays for its own writes only (stmerge and the I/O floor fsync theirs inside the clock).
 */
export function measuredRun(cmd, args, env = {}) {
  spawnSync("sync");
  const r = spawnSync("/usr/bin/time", ["-f", "TIME %e %M %U %S", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 24, env: { ...process.env, ...env } });
  const m = /TIME ([\d.]+) (\d+) ([\d.]+) ([\d.]+)\s*$/.exec(r.stderr ?? "");
  if (r.status !== 0 || !m) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  return { wall: Number(m[1]), rssMB: Number(m[2]) / 1024, cpu: Number(m[3]) + Number(m[4]), stdout: r.stdout.trim() };
}
