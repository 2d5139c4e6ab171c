#!/usr/bin/env node
// `pnpm test:oracle`: the live cross-checks in which real Python (torch, safetensors, numpy)
// reads what stmerge wrote. Uses STMERGE_ORACLE_PYTHON or ./.venv-oracle/bin/python.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dirname, "..", "..");
const python = process.env.STMERGE_ORACLE_PYTHON ?? join(root, ".venv-oracle", "bin", "python");
if (!existsSync(python)) {
  process.stderr.write(
    `test:oracle: no Python found at ${python}.\nSet it up with: python3 -m venv .venv-oracle && .venv-oracle/bin/pip install torch safetensors numpy\n`,
  );
  process.exit(1);
}
const probe = spawnSync(python, ["-c", "import torch, safetensors, numpy"], { encoding: "utf8" });
if (probe.status !== 0) {
  process.stderr.write(`test:oracle: ${python} lacks torch, safetensors or numpy:\n${probe.stderr}`);
  process.exit(1);
}
const vitest = join(root, "node_modules", ".bin", "vitest");
const result = spawnSync(vitest, ["run", ...process.argv.slice(2)], { cwd: root, stdio: "inherit", env: { ...process.env, STMERGE_ORACLE_PYTHON: python } });
process.exit(result.status ?? 1);
