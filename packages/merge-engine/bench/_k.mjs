import { createCpuKernelBackend } from "@stmerge/core-tensors";
for (const workers of [0, 1, 2]) {
const k = createCpuKernelBackend({ workers });
const n = 16 << 20;
const bytes = [0,1,2].map(() => { const b = k.allocBytes(n*2); const u = new Uint16Array(b.buffer); for (let i=0;i<n;i++){u[i] = (i * 2654435761 >>> 16) & 0x3bff;} return b; });
const ob = k.allocBytes(n*2);
const ts = [];
for (let rep=0; rep<4; rep++) {
let t=performance.now();
await k.weightedSumEncoded(bytes.map(b=>({bytes:b,dtype:"F16"})),[0.5,0.3,0.2],"F16",ob);
ts.push((performance.now()-t).toFixed(0));
}
console.log(`workers ${workers}: ${ts.join(" ")} ms per 16M`);
await k.close();
}
