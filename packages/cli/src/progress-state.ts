import type { ProgressEvent } from "@stmerge/core-tensors";

/** What the renderers draw for one phase at one moment (JSON progress lines carry exactly these fields). */
export interface PhaseSnapshot {
  readonly phase: string;
  readonly bytesDone: number;
  /** 0 when the length is unknown. */
  readonly bytesTotal: number;
  readonly itemsDone: number | null;
  readonly itemsTotal: number | null;
  readonly elapsedMs: number;
  /** Null while the rate is unknown or the phase has no known length. */
  readonly etaMs: number | null;
  /** Recent throughput in bytes per second (over the last few seconds), null before there is any. */
  readonly bytesPerSecond: number | null;
  /** 0..1, or null for a phase of unknown length. */
  readonly fraction: number | null;
  readonly finished: boolean;
  /** The tensor or block being worked on. */
  readonly current: string | undefined;
}

interface Sample {
  readonly at: number;
  readonly bytes: number;
}

interface Phase {
  readonly name: string;
  readonly startedAt: number;
  updatedAt: number;
  finishedAt: number | undefined;
  bytesDone: number;
  bytesTotal: number;
  itemsDone: number | null;
  itemsTotal: number | null;
  current: string | undefined;
  samples: Sample[];
}

/** Throughput is measured over this trailing window, so ETA follows the current speed, not the start-up. */
const RATE_WINDOW_MS = 5000;

/**
 * The progress of every phase, kept apart from drawing (the renderers only read snapshots).
 * Time comes from `now`, injected so tests never depend on the wall clock.
 */
export class ProgressState {
  readonly #now: () => number;
  readonly #phases = new Map<string, Phase>();

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Applies an event; returns the phase's snapshot and whether this event started (or restarted) it. */
  update(event: ProgressEvent): { snapshot: PhaseSnapshot; started: boolean } {
    const now = this.#now();
    let phase = this.#phases.get(event.phase);
    // A phase counting from the start again (the next file of `hash`) is a new run of it.
    const restarted = phase !== undefined && (event.bytesDone < phase.bytesDone || (phase.finishedAt !== undefined && event.bytesTotal !== phase.bytesTotal));
    const started = phase === undefined || restarted;
    if (!phase || restarted) {
      phase = { name: event.phase, startedAt: now, updatedAt: now, finishedAt: undefined, bytesDone: 0, bytesTotal: 0, itemsDone: null, itemsTotal: null, current: undefined, samples: [] };
      this.#phases.delete(event.phase);
      this.#phases.set(event.phase, phase);
    }
    phase.updatedAt = now;
    phase.bytesDone = Math.max(0, event.bytesDone);
    phase.bytesTotal = Math.max(0, event.bytesTotal);
    const itemsDone = event.itemsDone ?? event.tensorsDone;
    const itemsTotal = event.itemsTotal ?? event.tensorsTotal;
    if (itemsDone !== undefined) phase.itemsDone = itemsDone;
    if (itemsTotal !== undefined) phase.itemsTotal = itemsTotal;
    // The block ("IN04") or file when given, it is short and says where the work is; else the tensor.
    const current = event.detail || event.tensor;
    if (current !== undefined) phase.current = current;
    phase.samples.push({ at: now, bytes: phase.bytesDone });
    while (phase.samples.length > 2 && now - phase.samples[1]!.at >= RATE_WINDOW_MS) phase.samples.shift();
    const complete = phase.bytesTotal > 0 ? phase.bytesDone >= phase.bytesTotal : phase.itemsTotal !== null && phase.itemsTotal > 0 && (phase.itemsDone ?? 0) >= phase.itemsTotal;
    if (complete && phase.finishedAt === undefined) phase.finishedAt = now;
    return { snapshot: this.#snapshot(phase, now), started };
  }

  /** Marks a phase of unknown length as finished. */
  finish(name: string): void {
    const phase = this.#phases.get(name);
    if (phase && phase.finishedAt === undefined) phase.finishedAt = this.#now();
  }

  /** Snapshots of every phase in the order they started. */
  snapshots(): PhaseSnapshot[] {
    const now = this.#now();
    return [...this.#phases.values()].map((p) => this.#snapshot(p, now));
  }

  /** Forgets finished phases (their lines were cleared); running ones stay. */
  dropFinished(): void {
    for (const [name, p] of this.#phases) if (p.finishedAt !== undefined) this.#phases.delete(name);
  }

  #snapshot(p: Phase, now: number): PhaseSnapshot {
    const end = p.finishedAt ?? now;
    const elapsedMs = end - p.startedAt;
    const first = p.samples[0]!;
    const span = (p.finishedAt ?? p.updatedAt) - first.at;
    const rate = p.finishedAt !== undefined ? (elapsedMs > 0 ? (p.bytesDone * 1000) / elapsedMs : null) : span >= 250 ? ((p.bytesDone - first.bytes) * 1000) / span : null;
    const known = p.bytesTotal > 0;
    const fraction = known ? Math.min(1, p.bytesDone / p.bytesTotal) : p.itemsTotal ? Math.min(1, (p.itemsDone ?? 0) / p.itemsTotal) : null;
    let etaMs: number | null = null;
    if (p.finishedAt !== undefined) etaMs = 0;
    else if (known && rate !== null && rate > 0) etaMs = Math.round(((p.bytesTotal - p.bytesDone) / rate) * 1000);
    return {
      phase: p.name,
      bytesDone: p.bytesDone,
      bytesTotal: p.bytesTotal,
      itemsDone: p.itemsDone,
      itemsTotal: p.itemsTotal,
      elapsedMs,
      etaMs,
      bytesPerSecond: rate,
      fraction,
      finished: p.finishedAt !== undefined,
      current: p.current,
    };
  }
}
