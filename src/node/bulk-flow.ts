import type { TrafficMeter } from '../protocol/traffic.js';

/** Length of the windows traffic is counted in. */
export const BULK_WINDOW_MS = 250;
/** Bytes in or out within one window that make a bulk flow: 16 MB/s, far above an index exchange's trickle. */
export const BULK_BYTES_PER_WINDOW = 4 * 1024 * 1024;
/** Windows below that rate before a flow counts as over (a pause between two files does not end it). */
export const BULK_QUIET_WINDOWS = 4;

export interface BulkFlowOptions {
  /** Told when a bulk flow starts (true) and when it is over (false). */
  onChange(flowing: boolean): void;
  windowMs?: number;
  bytesPerWindow?: number;
  quietWindows?: number;
}

/**
 * Tells when file data is flowing in bulk, to or from any peer: a TrafficMeter to give the file
 * protocols (transfer, fetch) beside the status tracker; index records are not file data. Its one
 * user trades memory for CPU while data flows (memory-mode.ts); so it only counts bytes, and its
 * timer runs only during a flow and never keeps the process alive.
 */
export class BulkFlow implements TrafficMeter {
  private readonly windowMs: number;
  private readonly bytesPerWindow: number;
  private readonly quietWindows: number;
  private windowStart = 0;
  private bytes = 0;
  private quiet = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly options: BulkFlowOptions) {
    this.windowMs = options.windowMs ?? BULK_WINDOW_MS;
    this.bytesPerWindow = options.bytesPerWindow ?? BULK_BYTES_PER_WINDOW;
    this.quietWindows = options.quietWindows ?? BULK_QUIET_WINDOWS;
  }

  get flowing(): boolean {
    return this.timer !== undefined;
  }

  received(_peer: string, bytes: number): void {
    this.count(bytes);
  }

  sent(_peer: string, bytes: number): void {
    this.count(bytes);
  }

  /** Ends a flow in progress (the node stops): its end is reported, the timer cleared. */
  stop(): void {
    if (this.timer === undefined) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.options.onChange(false);
  }

  private count(bytes: number): void {
    const now = Date.now();
    if (this.timer === undefined && now - this.windowStart >= this.windowMs) {
      this.windowStart = now;
      this.bytes = 0;
    }
    this.bytes += bytes;
    if (this.timer === undefined && this.bytes >= this.bytesPerWindow) this.start();
  }

  private start(): void {
    this.bytes = 0;
    this.quiet = 0;
    this.timer = setInterval(() => this.tick(), this.windowMs);
    this.timer.unref();
    this.options.onChange(true);
  }

  private tick(): void {
    this.quiet = this.bytes >= this.bytesPerWindow ? 0 : this.quiet + 1;
    this.bytes = 0;
    if (this.quiet >= this.quietWindows) this.stop();
  }
}

/** One meter that reports to several. */
export function meterAll(...meters: readonly TrafficMeter[]): TrafficMeter {
  return {
    received: (peer, bytes) => {
      for (const meter of meters) meter.received(peer, bytes);
    },
    sent: (peer, bytes) => {
      for (const meter of meters) meter.sent(peer, bytes);
    },
  };
}
