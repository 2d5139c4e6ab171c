/**
 * TIES's cut among the magnitudes a window pass listed (F32 bits, all in [lo, hi]): the
 * `need`-th largest (1 ≤ need ≤ values.length), and how many equal to it are kept (`need` minus
 * those above it). The values are binned by their offset from lo, shifted so that at most 65536
 * bins cover the window (`histogram`: 65536 zeros, zeros again after); within the cut's bin, when
 * it spans several bit patterns, its values are sorted. Linear in the list, which may hold
 * millions of values.
 */
export function cutInList(values: Uint32Array, lo: number, hi: number, need: number, histogram: Uint32Array): [threshold: number, atThreshold: number] {
  const shift = Math.max(0, 16 - Math.clz32(hi - lo));
  const last = (hi - lo) >>> shift;
  binValues(values, lo, shift, histogram);
  const [bin, count] = binOfRank(histogram, last, need);
  const inBinCount = histogram[bin]!;
  histogram.fill(0, 0, last + 1);
  if (shift === 0) return [lo + bin, need - count];
  // One slot more than the bin holds: valuesInBin writes every value before it decides.
  const inBin = new Uint32Array(inBinCount + 1);
  valuesInBin(values, lo, shift, bin, inBin);
  inBin.subarray(0, inBinCount).sort();
  const threshold = inBin[inBinCount - (need - count)]!;
  let greater = 0;
  while (inBin[inBinCount - 1 - greater]! > threshold) greater++;
  return [threshold, need - count - greater];
}

/**
 * The bin of `histogram` holding the `need`-th largest value, counting down from bin `top` (those
 * above it are empty), and how many values lie in the bins above it; bin 0 when fewer are counted.
 */
export function binOfRank(histogram: Uint32Array, top: number, need: number): [bin: number, above: number] {
  let count = 0;
  let bin = top;
  for (; bin > 0 && count + histogram[bin]! < need; bin--) count += histogram[bin]!;
  return [bin, count];
}

// The two passes over the list, each a function of its own (V8 optimizes small hot loops best).

function binValues(values: Uint32Array, lo: number, shift: number, histogram: Uint32Array): void {
  for (let i = 0; i < values.length; i++) histogram[(values[i]! - lo) >>> shift]!++;
}

/**
 * Copies the values in bin `bin` ((v − lo) >>> shift) into `out` (which holds one more than
 * there are), in order. Without a branch: each value is written, and the next one goes after it
 * only when it was in the bin. The bin's values are scattered through the list, and the branch
 * that picked them was mispredicted often enough to take four times as long.
 */
function valuesInBin(values: Uint32Array, lo: number, shift: number, bin: number, out: Uint32Array): void {
  for (let i = 0, j = 0; i < values.length; i++) {
    const v = values[i]!;
    out[j] = v;
    // 1 when the value's bin is `bin` (their XOR is 0), else 0: bins are below 2¹⁶.
    j += ((((v - lo) >>> shift) ^ bin) - 1) >>> 31;
  }
}
