// Max difference in F16 units in the last place between two safetensors files, tensor by tensor.
// usage: node compare-outputs.mjs A B
import { openSafetensors } from "@stmerge/core-tensors";

export async function maxUlpDifference(pathA, pathB) {
  const [a, b] = await Promise.all([openSafetensors(pathA), openSafetensors(pathB)]);
  let maxUlp = 0;
  let tensors = 0;
  let worst = "";
  try {
    for (const d of a.descriptors) {
      const other = b.get(d.name);
      if (!other) throw new Error(`${pathB}: lacks ${d.name}`);
      if (other.dtype !== d.dtype) throw new Error(`${d.name}: ${d.dtype} vs ${other.dtype}`);
      const [x, y] = await Promise.all([a.read(d.name), b.read(d.name)]);
      tensors++;
      if (d.dtype !== "F16") {
        if (Buffer.compare(Buffer.from(x), Buffer.from(y)) !== 0) throw new Error(`${d.name}: ${d.dtype} bytes differ`);
        continue;
      }
      const u = new Uint16Array(x.buffer, x.byteOffset, x.byteLength / 2);
      const v = new Uint16Array(y.buffer, y.byteOffset, y.byteLength / 2);
      for (let i = 0; i < u.length; i++) {
        const p = u[i] & 0x8000 ? -(u[i] & 0x7fff) : u[i];
        const q = v[i] & 0x8000 ? -(v[i] & 0x7fff) : v[i];
        const diff = Math.abs(p - q);
        if (diff > maxUlp) {
          maxUlp = diff;
          worst = d.name;
        }
      }
    }
    if (b.descriptors.length !== a.descriptors.length) throw new Error(`tensor counts differ: ${a.descriptors.length} vs ${b.descriptors.length}`);
  } finally {
    await Promise.all([a.close(), b.close()]);
  }
  return { maxUlp, tensors, worst };
}

if (process.argv[1]?.endsWith("compare-outputs.mjs")) {
  process.stdout.write(JSON.stringify(await maxUlpDifference(process.argv[2], process.argv[3])) + "\n");
}
