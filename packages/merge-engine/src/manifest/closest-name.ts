/**
 * Edit distance counting an adjacent swap as one edit (optimal string alignment), so the usual
 * typos (`alpah`, `densty`, `wieght`) are one edit from the intended name.
 */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known name a mistyped one most likely meant (case-insensitive, at most a third of it wrong), or undefined. */
export function closestName(name: string, known: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: { name: string; distance: number } | undefined;
  for (const k of known) {
    const distance = editDistance(lower, k.toLowerCase());
    if (distance <= Math.max(1, Math.floor(k.length / 3)) && (!best || distance < best.distance)) best = { name: k, distance };
  }
  return best?.name;
}

/** ` (did you mean "alpha"?)` or "" — for the end of an "unknown name" message. */
export function didYouMean(name: string, known: readonly string[]): string {
  const match = closestName(name, known);
  return match ? ` (did you mean ${JSON.stringify(match)}?)` : "";
}
