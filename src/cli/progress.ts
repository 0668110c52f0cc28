import cliProgress from 'cli-progress';
import { formatBytes, formatDuration } from '../units.js';

/** How often a plain progress line is printed when the output is not a terminal. */
const PLAIN_LINE_INTERVAL_MS = 5000;
/** Work shorter than this shows no progress at all. */
const SHOW_AFTER_MS = 500;

export interface ProgressState {
  files: number;
  totalFiles: number;
  bytes: number;
  totalBytes: number;
}

/**
 * Progress of long work (files and bytes, rate, ETA): a bar redrawn in place on a terminal, a plain
 * line every few seconds in a log. Nothing for work that ends within half a second.
 */
export class Progress {
  private readonly started = Date.now();
  private bar: cliProgress.SingleBar | undefined;
  private lastLine = 0;

  constructor(
    private readonly label: string,
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {}

  private rate(state: ProgressState): { perSecond: number; eta: number } {
    const seconds = (Date.now() - this.started) / 1000;
    const perSecond = seconds > 0 ? state.bytes / seconds : 0;
    return { perSecond, eta: perSecond > 0 ? (state.totalBytes - state.bytes) / perSecond : Number.POSITIVE_INFINITY };
  }

  private describe(state: ProgressState): string {
    const { perSecond, eta } = this.rate(state);
    return (
      `${state.files}/${state.totalFiles} files, ${formatBytes(state.bytes)}/${formatBytes(state.totalBytes)}, ` +
      `${formatBytes(perSecond)}/s, ETA ${formatDuration(eta)}`
    );
  }

  update(state: ProgressState): void {
    const now = Date.now();
    if (now - this.started < SHOW_AFTER_MS) return;
    if (this.stream.isTTY !== true) {
      if (now - this.lastLine >= PLAIN_LINE_INTERVAL_MS) {
        this.lastLine = now;
        this.stream.write(`${new Date(now).toISOString()} ${this.label}: ${this.describe(state)}\n`);
      }
      return;
    }
    if (this.bar === undefined) {
      this.bar = new cliProgress.SingleBar(
        { format: `${this.label} [{bar}] {percentage}% | {detail}`, stream: this.stream, hideCursor: true, clearOnComplete: true },
        cliProgress.Presets.shades_classic,
      );
      this.bar.start(Math.max(1, state.totalBytes), state.bytes, { detail: '' });
    }
    this.bar.setTotal(Math.max(1, state.totalBytes));
    this.bar.update(state.bytes, { detail: this.describe(state) });
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}
