/**
 * Progress is an event stream the libraries emit and only the CLI draws. Every long operation
 * accepts an optional `onProgress` callback with these events. A phase is identified by `phase`;
 * several phases may run at once (convert and hash), each with its own counters. Events of one
 * phase are cumulative: `bytesDone` never decreases. `bytesTotal` 0 means "length unknown".
 */
export interface ProgressEvent {
  /** What is being done, e.g. "hash", "convert", "merge", "verify". */
  readonly phase: string;
  readonly bytesDone: number;
  readonly bytesTotal: number;
  /** The tensor being worked on, when there is one. */
  readonly tensor?: string;
  /** Free-form context such as the current block name ("IN04"). */
  readonly detail?: string;
  /** Tensors done / total, when counted. */
  readonly tensorsDone?: number;
  readonly tensorsTotal?: number;
  /** Items (files, tensors, entries) done / total, when a phase counts something other than tensors. */
  readonly itemsDone?: number;
  readonly itemsTotal?: number;
}

export type ProgressCallback = (event: ProgressEvent) => void;
