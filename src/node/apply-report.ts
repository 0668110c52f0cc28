import type { RebuildAttempt } from '../delta/index.js';
import type { FileRecord } from '../store/types.js';
import type { Decision } from './planner.js';
import type { BasisKind, PullSource } from './puller.js';

/** What was done at a path. */
export type ApplyAction =
  /** A file was written: pulled, copied from a local file of the same content, or created empty. */
  | 'file'
  /** Same content as the local file: permissions and mtime set, the version recorded. */
  | 'metadata'
  | 'directory'
  | 'symlink'
  /** The local file, symlink or empty folder was removed and the tombstone recorded. */
  | 'deleted'
  /** A delete recorded where there was nothing to remove. */
  | 'tombstone'
  /** Concurrent versions of the same content: merge(L, R) recorded, nothing changed on disk. */
  | 'merged';

/** Why a path was left as it is. */
export type SkipReason =
  /** The local version is equal or newer. */
  | 'up-to-date'
  /**
   * A conflict the local version wins: nothing changes or is recorded here; the other device keeps
   * its version as a conflict copy and sends back merge(L, R) with this content.
   */
  | 'local-wins'
  /** The local ignore rules exclude the path: never written. */
  | 'ignored'
  /** The disk or the record changed since the last scan: rescan the path and apply its record again. */
  | 'changed-locally'
  /** A delete of a file changed since the last scan: kept (edit beats delete); rescan it. */
  | 'kept-edit'
  /** A delete (or replacement) of a folder that holds files mesh does not know of, or ignores: kept. */
  | 'kept-folder';

export const SKIP_MESSAGES: Readonly<Record<SkipReason, string>> = {
  'up-to-date': 'the local version is the same or newer',
  'local-wins': 'a conflict the local version wins: kept; the other device keeps its version as a conflict copy',
  ignored: 'ignored by the local rules',
  'changed-locally': 'changed locally since it was scanned; rescan and decide again',
  'kept-edit': 'changed locally since it was scanned: kept (an edit beats a delete); rescan and decide again',
  'kept-folder': 'the folder holds files mesh does not know of or ignores: kept',
};

/** How a pulled file's bytes were obtained. */
export interface PullSummary {
  /** The peer the bytes came from: the record's, or another with the same version when it failed. */
  readonly peer: string;
  readonly source: PullSource;
  readonly basis?: BasisKind;
  /** A copy's source, or a transfer's basis (folder-relative). */
  readonly from?: string;
  readonly attempts: readonly RebuildAttempt[];
  readonly literalBytes: number;
  readonly reusedBytes: number;
}

export interface AppliedPath {
  readonly status: 'applied';
  readonly path: string;
  readonly action: ApplyAction;
  readonly decision: Decision['action'];
  /** Where the losing local version of a conflict was kept (the scanner records it as a new file). */
  readonly conflictCopy?: string;
  readonly pull?: PullSummary;
  /** A merge of concurrent versions of the same content: the local record it replaced, and the record made. */
  readonly merge?: MergeRecorded;
}

export interface MergeRecorded {
  /** The sequence of the local record merged with the peer's. */
  readonly replacedSequence: number;
  readonly recorded: FileRecord;
}

export interface SkippedPath {
  readonly status: 'skipped';
  readonly path: string;
  readonly reason: SkipReason;
  readonly message: string;
}

export interface FailedPath {
  readonly status: 'failed';
  readonly path: string;
  readonly error: Error;
  /** The peer that announced the record. */
  readonly peer: string;
  /**
   * Whether the peer is to blame (a malformed record, a delta that does not verify, bytes that do
   * not hash to the announced content), as opposed to a local problem or a lost connection.
   */
  readonly peerAtFault: boolean;
}

export type PathOutcome = AppliedPath | SkippedPath | FailedPath;

export interface ApplyReport {
  /** One outcome per record given, in the order they were settled. */
  readonly outcomes: readonly PathOutcome[];
  readonly applied: readonly AppliedPath[];
  readonly skipped: readonly SkippedPath[];
  readonly failed: readonly FailedPath[];
  /** Paths to rescan and decide again ('changed-locally' and 'kept-edit'). */
  readonly changedLocally: readonly string[];
  /** Conflict copies made (already rescanned when the applier has a rescan hook). */
  readonly conflictCopies: readonly string[];
  /** Literal bytes that came from peers, and bytes reused from local files, over all pulls. */
  readonly literalBytes: number;
  readonly reusedBytes: number;
  readonly durationMs: number;
}

export class ApplyReportBuilder {
  private readonly outcomes: PathOutcome[] = [];

  add(outcome: PathOutcome): void {
    this.outcomes.push(outcome);
  }

  skip(path: string, reason: SkipReason): void {
    this.add({ status: 'skipped', path, reason, message: SKIP_MESSAGES[reason] });
  }

  finish(durationMs: number): ApplyReport {
    const applied = this.outcomes.filter((o): o is AppliedPath => o.status === 'applied');
    const skipped = this.outcomes.filter((o): o is SkippedPath => o.status === 'skipped');
    return {
      outcomes: this.outcomes,
      applied,
      skipped,
      failed: this.outcomes.filter((o): o is FailedPath => o.status === 'failed'),
      changedLocally: skipped.filter((o) => o.reason === 'changed-locally' || o.reason === 'kept-edit').map((o) => o.path),
      conflictCopies: applied.flatMap((o) => (o.conflictCopy === undefined ? [] : [o.conflictCopy])),
      literalBytes: applied.reduce((sum, o) => sum + (o.pull?.literalBytes ?? 0), 0),
      reusedBytes: applied.reduce((sum, o) => sum + (o.pull?.reusedBytes ?? 0), 0),
      durationMs,
    };
  }
}
