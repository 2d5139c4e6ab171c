/**
 * A fixed-width terminal for tests: interprets what the renderers write (carriage return,
 * newline, cursor up, erase line, erase below, colour codes, autowrap) into screen lines, and
 * keeps every write so tests can assert on frames. Unknown escape sequences fail the test.
 */
export class FakeTerminal {
  readonly isTTY = true;
  readonly writes: string[] = [];
  /** The screen after every write, when `recordScreens` is set. */
  readonly screens: string[][] = [];
  recordScreens = false;
  wraps = 0;
  #lines: string[] = [""];
  #row = 0;
  #col = 0;

  constructor(readonly columns: number) {}

  write(chunk: string): boolean {
    this.writes.push(chunk);
    let i = 0;
    while (i < chunk.length) {
      const ch = chunk[i]!;
      if (ch === "\x1b") {
        const m = /^\x1b\[([0-9;?]*)([A-Za-z])/.exec(chunk.slice(i));
        if (!m) throw new Error(`unknown escape sequence at ${JSON.stringify(chunk.slice(i, i + 8))}`);
        this.#escape(m[1]!, m[2]!);
        i += m[0].length;
        continue;
      }
      if (ch === "\r") this.#col = 0;
      else if (ch === "\n") {
        this.#row++;
        this.#col = 0;
        while (this.#lines.length <= this.#row) this.#lines.push("");
      } else {
        // Autowrap as real terminals do; `wraps` counts it (a live progress line must never wrap).
        if (this.columns > 0 && this.#col >= this.columns) {
          this.wraps++;
          this.#row++;
          this.#col = 0;
          while (this.#lines.length <= this.#row) this.#lines.push("");
        }
        const line = this.#lines[this.#row]!.padEnd(this.#col);
        this.#lines[this.#row] = line.slice(0, this.#col) + ch + line.slice(this.#col + 1);
        this.#col++;
      }
      i++;
    }
    if (this.recordScreens) this.screens.push(this.screen());
    return true;
  }

  #escape(args: string, op: string): void {
    const n = Number(args || "1");
    if (op === "m") return; // colour
    if (op === "A") this.#row = Math.max(0, this.#row - n);
    else if (op === "K") this.#lines[this.#row] = args === "2" ? "" : this.#lines[this.#row]!.slice(0, this.#col);
    else if (op === "J") this.#lines = [...this.#lines.slice(0, this.#row), this.#lines[this.#row]!.slice(0, this.#col)];
    else throw new Error(`unexpected escape ${op}`);
  }

  /** The screen as text lines, trailing empty lines removed. */
  screen(): string[] {
    const lines = this.#lines.map((l) => l.trimEnd());
    while (lines.length > 0 && lines[lines.length - 1] === "") lines.pop();
    return lines;
  }

  /** Everything written, for checks like "no control codes". */
  all(): string {
    return this.writes.join("");
  }
}

/** A clock and scheduler under test control: `advance(ms)` moves time and runs the timers that fall due. */
export class ManualClock {
  #now = 0;
  #timers: { at: number; fn: () => void; cancelled: boolean }[] = [];

  readonly now = (): number => this.#now;

  readonly schedule = (fn: () => void, ms: number): (() => void) => {
    const timer = { at: this.#now + ms, fn, cancelled: false };
    this.#timers.push(timer);
    return () => {
      timer.cancelled = true;
    };
  };

  advance(ms: number): void {
    const end = this.#now + ms;
    for (;;) {
      const due = this.#timers.filter((t) => !t.cancelled && t.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.#now = due.at;
      due.cancelled = true;
      due.fn();
    }
    this.#now = end;
    this.#timers = this.#timers.filter((t) => !t.cancelled);
  }

  pending(): number {
    return this.#timers.filter((t) => !t.cancelled).length;
  }
}
