import { execFileSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditCheckpoint } from "../src/audit-checkpoint.js";
import { openTorchCheckpoint } from "../src/open-torch-checkpoint.js";
import { bigEndianMixedStorages, hostileContainers, PAYLOAD_MARKER } from "./hostile-containers.js";

// Differential oracle: real torch.load(weights_only=False) on each hostile container, in its own
// process, tells whether torch would execute the payload, load the file, or refuse it. audit must
// never call a file clean that torch would execute. Runs only under `pnpm test:oracle`.
const python = process.env.STMERGE_ORACLE_PYTHON;

// One Python process loads every file in turn; what each load prints lies between its BEGIN and OUTCOME lines.
const LOAD = `
import sys, torch, warnings
warnings.simplefilter("ignore")
for path in sys.argv[1:]:
    print("\\nBEGIN " + path, flush=True)
    try:
        torch.load(path, weights_only=False, map_location="cpu")
        print("\\nOUTCOME load", flush=True)
    except BaseException as e:
        print("\\nOUTCOME refuse " + type(e).__name__, flush=True)
`;

type TorchOutcome = "execute" | "load" | "refuse";
const outcomes = new Map<string, TorchOutcome>();

let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "safe-pickle-oracle-"));
  if (!python) return;
  const paths: string[] = [];
  for (const c of hostileContainers()) {
    const path = join(dir, `${c.name}.pt`);
    await writeFile(path, c.bytes);
    paths.push(path);
  }
  const out = execFileSync(python, ["-c", LOAD, ...paths], { encoding: "utf8", timeout: 300_000 });
  // "execute" when the payload ran, even if loading failed after it.
  for (const block of out.split("\nBEGIN ").slice(1)) {
    const path = block.slice(0, block.indexOf("\n"));
    outcomes.set(path, block.includes(PAYLOAD_MARKER) ? "execute" : block.includes("OUTCOME load") ? "load" : "refuse");
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

// What torch does with each container, pinned so a torch upgrade that changes it shows up here.
const TORCH: Record<string, TorchOutcome> = {
  "zip-clean": "load",
  "zip-payload-in-upper-case-data-pkl": "execute",
  "zip-deflated-payload": "execute",
  "zip-case-twins": "load",
  "zip-duplicate-names": "load",
  "zip-two-end-records": "load",
  "zip-local-name-disagrees": "load",
  "zip-deflated-clean": "load",
  "zip-payload-in-extra-pkl": "load",
  "zip-deflate-bomb": "load",
  "zip-byteorder-with-newline": "refuse",
  "pickle-then-garbage": "refuse",
  "tar-v7-payload-in-storages": "execute",
  "tar-pickle-polyglot": "execute",
  "pickle-then-payload-pickle": "refuse",
  "legacy-then-payload-pickle": "load",
  "safetensors-shaped-pickle": "execute",
};

describe.runIf(python)("audit against torch.load(weights_only=False) on hostile containers", () => {
  for (const c of hostileContainers()) {
    it(`${c.name}: never clean when torch would execute`, async () => {
      const path = join(dir, `${c.name}.pt`);
      const torch = outcomes.get(path);
      expect(torch).toBeDefined();
      const report = await auditCheckpoint(path);
      if (torch === "execute") expect(report.status).not.toBe("clean");
      if (report.status === "clean") expect(torch).toBe("load");
      const pinned = TORCH[c.name];
      if (pinned !== undefined) expect(torch).toBe(pinned);
      expect(report.status).toBe(c.audit);
    });
  }
});

describe.runIf(python)("byteorder as torch.load honours it", () => {
  it("a big-endian archive: typed storages swapped, untyped storages (v3) not — the same values as torch", async () => {
    const path = join(dir, "big-mixed.pt");
    await writeFile(path, bigEndianMixedStorages());
    // weights_only=False: torch's own allowlist refuses the `torch.storage UntypedStorage` spelling; the file holds no payload.
    const script = `import json, sys, torch\nd = torch.load(sys.argv[1], weights_only=False)\nprint(json.dumps({k: v.tolist() for k, v in d.items()}))`;
    const torch = JSON.parse(execFileSync(python!, ["-c", script, path], { encoding: "utf8" })) as Record<string, number[]>;
    const checkpoint = await openTorchCheckpoint(path);
    try {
      const source = checkpoint.allTensorsSource();
      expect([...new Int16Array((await source.read("w")).slice().buffer)]).toEqual(torch.w);
      expect([...new Float32Array((await source.read("f")).slice().buffer)]).toEqual(torch.f);
      expect(torch).toEqual({ w: [0x0201, 0x0403], f: [1.5, -2] });
    } finally {
      await checkpoint.close();
    }
  });
});
