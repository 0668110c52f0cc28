/** What one scan found and did: for the `mesh scan` command, the watcher's log and the tests. */
export interface ScanReport {
  /** The subtrees walked ('' is the whole folder), after widening (see Scanner.scan). */
  readonly scope: readonly string[];
  /** New paths (a tombstone's path that reappeared counts as added). */
  readonly added: readonly string[];
  /** Paths whose content, type or permissions changed: each got a new version. */
  readonly modified: readonly string[];
  /** Paths recorded as deleted (tombstones), moves not included. */
  readonly deleted: readonly string[];
  /** A new file with the content of a deleted one. */
  readonly moved: readonly Move[];
  /** Exact numbers, also when a list above stopped at MAX_REPORTED_PATHS. */
  readonly counts: {
    readonly added: number;
    readonly modified: number;
    readonly deleted: number;
    readonly moved: number;
    /** Same content with new metadata (a touch, a copy back in place): updated, version kept. */
    readonly metadataUpdated: number;
    /** Entries whose record needed no change. */
    readonly unchanged: number;
    readonly errors: number;
  };
  /** File bytes in each list (the deleted ones' last recorded size). */
  readonly bytes: {
    readonly added: number;
    readonly modified: number;
    readonly deleted: number;
    readonly moved: number;
  };
  readonly filesHashed: number;
  readonly bytesHashed: number;
  /** Paths skipped this time, each left as it was recorded (never turned into a delete). */
  readonly errors: readonly ScanError[];
  /** Whether a list or the errors were cut at their limit. */
  readonly truncated: boolean;
  readonly durationMs: number;
}

export interface Move {
  readonly from: string;
  readonly to: string;
}

export interface ScanError {
  /** Folder-relative path, as found on disk (it may not be valid or NFC: print it escaped). */
  readonly path: string;
  readonly message: string;
}

/** Paths kept per list of a report: a first scan of a million files must not keep them all twice. */
export const MAX_REPORTED_PATHS = 10_000;
/** Errors kept in a report. */
export const MAX_REPORTED_ERRORS = 1_000;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Collects a report as the scan goes, within the limits above. */
export class ReportBuilder {
  private readonly added: string[] = [];
  private readonly modified: string[] = [];
  private readonly deleted: string[] = [];
  private readonly moved: Move[] = [];
  private readonly errors: ScanError[] = [];
  readonly counts: Mutable<ScanReport['counts']> = {
    added: 0,
    modified: 0,
    deleted: 0,
    moved: 0,
    metadataUpdated: 0,
    unchanged: 0,
    errors: 0,
  };
  private readonly bytes: Mutable<ScanReport['bytes']> = { added: 0, modified: 0, deleted: 0, moved: 0 };
  private truncated = false;
  filesHashed = 0;
  bytesHashed = 0;

  private keep<T>(list: T[], item: T, limit: number): void {
    if (list.length < limit) list.push(item);
    else this.truncated = true;
  }

  add(kind: 'added' | 'modified' | 'deleted', path: string, bytes: number): void {
    this.counts[kind]++;
    this.bytes[kind] += bytes;
    this.keep(this[kind], path, MAX_REPORTED_PATHS);
  }

  move(move: Move, bytes: number): void {
    this.counts.moved++;
    this.bytes.moved += bytes;
    this.keep(this.moved, move, MAX_REPORTED_PATHS);
  }

  error(path: string, message: string): void {
    this.counts.errors++;
    this.keep(this.errors, { path, message }, MAX_REPORTED_ERRORS);
  }

  finish(scope: readonly string[], durationMs: number): ScanReport {
    return {
      scope,
      added: this.added,
      modified: this.modified,
      deleted: this.deleted,
      moved: this.moved,
      counts: { ...this.counts },
      bytes: { ...this.bytes },
      filesHashed: this.filesHashed,
      bytesHashed: this.bytesHashed,
      errors: this.errors,
      truncated: this.truncated,
      durationMs,
    };
  }
}
