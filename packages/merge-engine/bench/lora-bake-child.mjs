// One LoRA bake in its own process, so the parent can measure its wall time and peak RSS.
// usage: node lora-bake-child.mjs CHECKPOINT LORA OUTPUT
import { createCpuKernelBackend } from "@stmerge/core-tensors";
import { bakeLoras, loadLora } from "../dist/index.js";

const [checkpoint, loraPath, output] = process.argv.slice(2);
const started = performance.now();
const lora = await loadLora(loraPath);
const loaded = performance.now();
const kernels = createCpuKernelBackend();
const r = await bakeLoras(checkpoint, [{ lora, strength: 1 }], { outputPath: output, overwrite: true, kernels });
await kernels.close();
process.stdout.write(
  JSON.stringify({ seconds: (performance.now() - started) / 1000, loadLoraSeconds: (loaded - started) / 1000, bytes: r.bytesWritten, tensorsChanged: r.tensorsChanged, kernels: kernels.description, modulesPlaced: r.modulesPlaced, unplaced: r.unplaced.length }) + "\n",
);
