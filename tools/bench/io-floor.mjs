// The I/O floor: read every input once and write one output of the same size (fsync'd),
// with the same 64 MiB-chunk pattern and no compute.
// usage: node tools/bench/io-floor.mjs [--direct] OUTPUT INPUT...   (the output is as large as the last input)
// --direct: the output is written with O_DIRECT (past the page cache, as stmerge writes large
// outputs on Linux: core-tensors' direct-writes.ts), whole 4 KiB blocks from a page-aligned buffer
// in 4 MiB writes (stmerge's staging size; 64 MiB ones made the floor 0.4-0.9 s slower for 2.1 GB
// here, 2026-12-05), the last partial block through the page cache.
import { constants } from "node:fs";
import { open, unlink } from "node:fs/promises";

const args = process.argv.slice(2);
const direct = args[0] === "--direct";
const [output, ...inputs] = direct ? args.slice(1) : args;
// WebAssembly memory is page-aligned, as O_DIRECT needs; a Buffer is not.
const chunk = new Uint8Array(new WebAssembly.Memory({ initial: 1024 }).buffer, 0, 64 << 20);
const started = performance.now();
let size = 0;
for (const path of inputs) {
  const h = await open(path, "r");
  size = (await h.stat()).size;
  for (let pos = 0; pos < size; ) {
    const { bytesRead } = await h.read(chunk, 0, chunk.length, pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
  }
  await h.close();
}
const out = await open(output, "w");
const whole = direct ? size - (size % 4096) : size;
if (direct) {
  const d = await open(output, constants.O_WRONLY | constants.O_DIRECT);
  const piece = 4 << 20;
  for (let pos = 0; pos < whole; pos += piece) await d.write(chunk, 0, Math.min(piece, whole - pos), pos);
  await d.close();
}
for (let pos = whole; pos < size; pos += chunk.length) await out.write(chunk, 0, Math.min(chunk.length, size - pos), pos);
await out.sync();
await out.close();
await unlink(output);
process.stdout.write(JSON.stringify({ seconds: (performance.now() - started) / 1000 }) + "\n");
