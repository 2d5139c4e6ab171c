import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "fixtures");
export const fixture = (name: string): string => join(FIXTURES, name);

export interface ExpectedTensor {
  readonly dtype: string;
  readonly shape: number[];
  readonly sha256: string;
}

/** Tensor digests torch.load produced for each fixture (tools/fixtures/torch_checkpoints.py). */
export const EXPECTED: Record<string, { format: string; tensors: Record<string, ExpectedTensor> }> = JSON.parse(readFileSync(join(FIXTURES, "expected.json"), "utf8"));
