import type { BigIntStats } from 'node:fs';
import { chmod, lstat, mkdir, rename, symlink, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { syncDirectory } from '../fs/atomic-write.js';
import { FolderMissingError } from '../folder/errors.js';
import { toAbsolute } from '../folder/paths.js';
import { comparePaths } from '../store/memory-store.js';
import type { FileChange, FileRecord } from '../store/types.js';
import { EMPTY_VECTOR, merge, type VersionVector } from '../store/version-vector.js';
import { ApplyReportBuilder, type AppliedPath, type ApplyReport, type PullSummary, type SkipReason } from './apply-report.js';
import { conflictName } from './conflict-name.js';
import { crashPoint } from './crash-point.js';
import {
  diskMatches,
  ensureRealParents,
  finishFile,
  lstatOrUndefined,
  removeEmptyFolder,
  removePlanted,
  tempPathOf,
  unlinkIfPresent,
} from './disk.js';
import { MAX_FETCH_FILE_BYTES } from '../protocol/constants.js';
import { ConflictCopyExistsError, InvalidRemoteRecordError } from './errors.js';
import { BatchApply, type WholeFile } from './batch-apply.js';
import { misbehaviourOf } from './peer-penalties.js';
import { LocalContentIndex, WantedContent } from './local-content.js';
import { MoveSources } from './move-sources.js';
import { decide, type Decision } from './planner.js';
import { commitRecordOnly, recordOnlyKind, type RecordOnly } from './record-only.js';
import { applyDeletes as applyDeleteBatches, tombstoneOf } from './batch-delete.js';
import type { ApplierInit } from './applier.js';
import type { PlainChange } from './locked-batch.js';
import { applyFolders as applyFolderBatches, isPlainFolder } from './batch-folders.js';
import { Puller, type PulledFile } from './puller.js';
import { APPLIED_MODE_MASK, contentChangeOf, remoteRecordProblem, type RemoteRecord } from './remote-record.js';

/** Peers one pull tries at most (each goes on from what the previous one sent). */
export const MAX_PULL_SOURCES = 3;
/**
 * Files up to this size are fetched whole even when a local version could serve as a delta's
 * basis: the signature, the delta's framing and the round of the engine cost about what they save.
 * Larger ones (up to MAX_FETCH_FILE_BYTES) are fetched whole only when nothing local shares a block.
 */
export const WHOLE_FILE_BYTES = 16 * 1024;

/** Decides which paths the local rules ignore (the scanner's IgnoreRules fits). */
export interface IgnoreMatcher {
  isIgnored(path: string, isDirectory: boolean): boolean;
}

/** What an apply is given: the applier's parts (syncFs among them, passed on to BatchApply), its concurrency settled. */
export type ApplyRunComponents = Omit<ApplierInit, 'concurrency'> & { readonly concurrency: number };

/** What one path came to, before it goes into the report. */
type Settled = { readonly applied: Omit<AppliedPath, 'status' | 'path' | 'decision'> } | { readonly skipped: SkipReason };

const skipped = (reason: SkipReason): Settled => ({ skipped: reason });

/**
 * One call of Applier.apply: the records grouped by path and applied in phases, so that folders
 * exist before what goes in them and are emptied before they are removed:
 *   1. folders (parents first), one at a time;
 *   2. files and symlinks, `concurrency` at a time (a rename elsewhere is moved from its source
 *      when step 3 deletes it and nothing else wants its content, else copied before step 3
 *      deletes the source);
 *   3. deletes, deepest first (those that simply dominate, in batches: batch-delete.ts);
 *   4. files and symlinks replacing a local folder (emptied by step 3).
 * Records of one path are applied one after the other, in the order given.
 */
export class ApplyRun {
  private readonly report = new ApplyReportBuilder();
  private readonly puller: Puller;
  private index?: LocalContentIndex;
  private readonly pulling: RemoteRecord[] = [];
  /** What the versions in `pulling` hold (see wantedContent). */
  private wanted?: WantedContent;
  /** Local files this apply deletes that a new path may take by a rename (see MoveSources). */
  private moves?: MoveSources;
  /** Paths for the scanner to look at when done: conflict copies, and folders that lost a conflict. */
  private readonly rescans = new Set<string>();
  private fatal: { error: unknown } | undefined;
  /** The peer a failed pull last asked, when it was not the record's (see pullFromAny). */
  private readonly failedPeers = new WeakMap<object, string>();
  /** What remoteRecordProblem said of each record: the phases ask of one record more than once. */
  private readonly problems = new WeakMap<RemoteRecord, string | undefined>();

  constructor(private readonly components: ApplyRunComponents) {
    const { root, exchange, signatures } = components;
    this.puller = new Puller({ root, exchange, ...(signatures === undefined ? {} : { signatures }), localContent: () => this.localContent() });
  }

  async run(remotes: readonly RemoteRecord[]): Promise<ApplyReport> {
    const started = performance.now();
    await this.components.checkFolder?.();
    const groups = new Map<string, RemoteRecord[]>();
    for (const remote of remotes) {
      const group = groups.get(remote.path);
      if (group === undefined) groups.set(remote.path, [remote]);
      else group.push(remote);
    }
    const folders: RemoteRecord[][] = [];
    const files: RemoteRecord[][] = [];
    const deletes: RemoteRecord[][] = [];
    for (const group of await this.settleRecordOnly([...groups.values()])) {
      // Each file version this apply may pull (what the index of local content is asked about).
      for (const remote of group) if (remote.type === 'file' && !remote.deleted) this.pulling.push(remote);
      const last = group[group.length - 1];
      if (last.deleted) deletes.push(group);
      else if (last.type === 'directory') folders.push(group);
      else files.push(group);
    }
    folders.sort((a, b) => comparePaths(a[0].path, b[0].path));
    deletes.sort((a, b) => comparePaths(b[0].path, a[0].path));
    this.moves = new MoveSources(
      deletes.filter((group) => this.isPlainSingle(group)).map(([remote]) => remote),
      this.wantedContent(),
    );

    await this.applyFolders(folders);
    const replacingFolders: RemoteRecord[][] = [];
    const { whole, rest } = await this.selectWholeFiles(files);
    await Promise.allSettled([
      this.fetchWhole(whole),
      this.each(rest, this.components.concurrency, async (group) => {
        const local = await this.components.store.get(group[0].path);
        if (local?.type !== 'directory' || local.deleted) return false;
        replacingFolders.push(group);
        return true;
      }),
    ]);
    if (this.fatal !== undefined) throw this.fatal.error;
    await this.applyDeletes(deletes);
    await this.each(replacingFolders, this.components.concurrency);

    if (this.rescans.size > 0 && this.components.rescan !== undefined) await this.components.rescan([...this.rescans]);
    return this.report.finish(performance.now() - started);
  }

  /**
   * Settles, before the phases, the paths of one record each that need no more than their record:
   * up to date (skipped), or a version of content already here (committed in batches, see
   * record-only.ts). The local records are read in one batch. Returns the groups left to apply.
   */
  private async settleRecordOnly(groups: RemoteRecord[][]): Promise<RemoteRecord[][]> {
    const single = groups.filter((group) => this.isPlainSingle(group));
    if (single.length === 0) return groups;
    const locals = await this.components.store.getMany(single.map((group) => group[0].path));
    const settled = new Set<RemoteRecord[]>();
    const recordOnly: RecordOnly[] = [];
    for (const [k, group] of single.entries()) {
      const [remote] = group;
      const local = locals[k];
      const decision = decide(local, remote);
      const kind = recordOnlyKind(remote, local, decision);
      if (decision.action === 'nothing') this.report.skip(remote.path, 'up-to-date');
      else if (kind !== undefined && local !== undefined) recordOnly.push({ remote, local, kind });
      else continue;
      settled.add(group);
    }
    await commitRecordOnly({ ...this.components, report: this.report, committed: (record) => this.index?.add(record) }, recordOnly);
    return settled.size === 0 ? groups : groups.filter((group) => !settled.has(group));
  }

  /** A path with one valid record that the local rules do not ignore: the kind the batches take. */
  private isPlainSingle(group: readonly RemoteRecord[]): boolean {
    const [remote] = group;
    return group.length === 1 && this.problemOf(remote) === undefined && this.components.ignores?.isIgnored(remote.path, remote.type === 'directory') !== true;
  }

  /** Why `remote` may not be acted on (remoteRecordProblem), checked once per apply. */
  private problemOf(remote: RemoteRecord): string | undefined {
    if (this.problems.has(remote)) return this.problems.get(remote);
    const problem = remoteRecordProblem(remote);
    this.problems.set(remote, problem);
    return problem;
  }

  /**
   * Phase 1, parents first: a run of folders that each dominate the local version of their path
   * (one record, no conflict, nothing but a folder recorded there: a new tree) is made in batches
   * (batch-folders.ts); any other folder alone, as every record is.
   */
  private applyFolders(groups: RemoteRecord[][]): Promise<void> {
    return this.inOrderBatched(
      groups,
      isPlainFolder,
      (items) => applyFolderBatches(this.batchComponents(), items),
    );
  }

  /**
   * Phase 3, in order: a run of deletes that each dominate the local version of their path (one
   * record, no conflict: a folder deleted elsewhere) is applied in batches (batch-delete.ts); any
   * other delete alone, as every record is.
   */
  private applyDeletes(groups: RemoteRecord[][]): Promise<void> {
    return this.inOrderBatched(
      groups,
      () => true,
      (items) => applyDeleteBatches(this.batchComponents(), items),
    );
  }

  /**
   * Applies `groups` in their order: each run of single records that dominate their local version
   * (planner: 'apply') and that `fits` goes to `batch` as one (the local records read in one batch
   * beforehand); any other group alone.
   */
  private async inOrderBatched(
    groups: RemoteRecord[][],
    fits: (remote: RemoteRecord, local: FileRecord | undefined) => boolean,
    batch: (items: PlainChange[]) => Promise<void>,
  ): Promise<void> {
    const candidates = groups.filter((group) => this.isPlainSingle(group));
    const locals = new Map<RemoteRecord[], FileRecord | undefined>();
    for (const [k, local] of (await this.components.store.getMany(candidates.map((group) => group[0].path))).entries()) locals.set(candidates[k], local);
    let run: PlainChange[] = [];
    const flush = async () => {
      if (run.length === 0) return;
      await batch(run);
      run = [];
    };
    for (const group of groups) {
      const [remote] = group;
      const local = locals.get(group);
      if (locals.has(group) && fits(remote, local) && decide(local, remote).action === 'apply') {
        run.push({ remote, local, version: merge(local?.version ?? EMPTY_VECTOR, remote.version) });
        continue;
      }
      await flush();
      await this.each([group], 1);
    }
    await flush();
  }

  /** What the batch appliers need: the components, this apply's report, and its index of local content told of each commit. */
  private batchComponents() {
    return { ...this.components, report: this.report, committed: (record: FileRecord) => this.index?.add(record) };
  }

  /**
   * Sets apart the files to fetch whole in batches (BatchApply): a single record of a file up to
   * MAX_FETCH_FILE_BYTES to be applied over nothing or an older file (no conflict, no folder in
   * the way, not the same bytes), that no local file holds already (those are copied), and that
   * is small (WHOLE_FILE_BYTES) or shares no block with a local file (a delta would not pay). The
   * local records are read in one batch; records already up to date are settled here. The rest
   * goes the way of one record at a time.
   */
  private async selectWholeFiles(files: RemoteRecord[][]): Promise<{ whole: WholeFile[]; rest: RemoteRecord[][] }> {
    const rest: RemoteRecord[][] = [];
    const candidates: RemoteRecord[] = [];
    for (const group of files) {
      const remote = group[0];
      const fits = this.isPlainSingle(group) && remote.type === 'file' && !remote.deleted && remote.size <= MAX_FETCH_FILE_BYTES;
      if (fits) candidates.push(remote);
      else rest.push(group);
    }
    const whole: WholeFile[] = [];
    if (candidates.length === 0) return { whole, rest };
    const locals = await this.components.store.getMany(candidates.map((remote) => remote.path));
    for (const [k, remote] of candidates.entries()) {
      const local = locals[k];
      const decision = decide(local, remote);
      if (decision.action === 'nothing') {
        this.report.skip(remote.path, 'up-to-date');
        continue;
      }
      const replacesFile = local === undefined || local.deleted || (local.type === 'file' && !sameBytes(local, remote));
      if (this.components.fetchFiles === undefined || decision.action !== 'apply' || !replacesFile || remote.size === 0 || !(await this.worthFetchingWhole(remote, local))) {
        rest.push([remote]);
        continue;
      }
      whole.push({ remote, local });
    }
    return { whole, rest };
  }

  /** Whether a file is better fetched whole than by delta (see selectWholeFiles). */
  private async worthFetchingWhole(remote: RemoteRecord, local: FileRecord | undefined): Promise<boolean> {
    const index = this.localContent();
    if ((await index.withContent(remote.contentHash)).length > 0) return false;
    if (remote.size <= WHOLE_FILE_BYTES) return true;
    // Only a new file asks for shared blocks (a pass over every record): an edit has its old version.
    const hasOldVersion = local !== undefined && !local.deleted && local.size > 0;
    return !hasOldVersion && (await index.mostShared(remote.blockHashes, remote.path)) === undefined;
  }

  /** Fetches and places the files chosen by selectWholeFiles; a missing folder ends the apply. */
  private async fetchWhole(files: readonly WholeFile[]): Promise<void> {
    const { fetchFiles } = this.components;
    if (files.length === 0 || fetchFiles === undefined) return;
    const batch = new BatchApply({
      ...this.components,
      fetchFiles,
      maxSources: MAX_PULL_SOURCES,
      report: this.report,
      committed: (record) => this.index?.add(record),
    });
    try {
      await batch.run(files);
    } catch (error) {
      this.fatal ??= { error };
    }
  }

  /** Applies the groups, `width` at a time; `defer` may set a group aside for later. */
  private async each(groups: RemoteRecord[][], width: number, defer?: (group: RemoteRecord[]) => Promise<boolean>): Promise<void> {
    let next = 0;
    const worker = async () => {
      while (this.fatal === undefined && next < groups.length) {
        const group = groups[next++];
        try {
          if (defer !== undefined && (await defer(group))) continue;
          for (const remote of group) await this.applyOne(remote);
        } catch (error) {
          this.fatal ??= { error };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(width, groups.length) }, worker));
    if (this.fatal !== undefined) throw this.fatal.error;
  }

  /** Decides and applies one record; every failure but a missing folder is reported, not thrown. */
  private async applyOne(remote: RemoteRecord): Promise<void> {
    const { path } = remote;
    try {
      const problem = this.problemOf(remote);
      if (problem !== undefined) throw new InvalidRemoteRecordError(`record of ${JSON.stringify(path)} from peer ${remote.peer}: ${problem}`);
      if (this.components.ignores?.isIgnored(path, remote.type === 'directory') === true) {
        this.report.skip(path, 'ignored');
        return;
      }
      const local = await this.components.store.get(path);
      const decision = decide(local, remote);
      const settled = await this.settle(remote, local, decision);
      if ('skipped' in settled) this.report.skip(path, settled.skipped);
      else this.report.add({ status: 'applied', path, decision: decision.action, ...settled.applied });
    } catch (error) {
      if (error instanceof FolderMissingError) throw error;
      const peer = (typeof error === 'object' && error !== null ? this.failedPeers.get(error) : undefined) ?? remote.peer;
      this.report.add({ status: 'failed', path, error: asError(error), peer, peerAtFault: isPeerFault(error) });
    }
  }

  private async settle(remote: RemoteRecord, local: FileRecord | undefined, decision: Decision): Promise<Settled> {
    switch (decision.action) {
      case 'nothing':
        return skipped('up-to-date');
      case 'merge':
        return this.recordMerged(remote, local!);
      case 'conflict':
        // The winner changes nothing and records nothing: the loser keeps its version as a conflict
        // copy and records merge(L, R) with the winner's content, which comes back here as a
        // version that dominates ours with our content. Recording merge(L, R) here instead would
        // hand a loser that has not decided yet a dominating version: it would overwrite its
        // version without keeping a copy (see docs/mesh-design.md, Conflict).
        if (decision.winner === 'local') return skipped('local-wins');
        return this.applyRemote(remote, local, true);
      case 'apply':
        return this.applyRemote(remote, local, false);
    }
  }

  /** Concurrent versions of the same content: records merge(L, R) with the local content and metadata. */
  private recordMerged(remote: RemoteRecord, local: FileRecord): Promise<Settled> {
    return this.locked(local.path, local, async (stats) => {
      if (!diskMatches(local, stats)) return skipped('changed-locally');
      await this.commit({ ...changeOf(local), version: merge(local.version, remote.version) });
      return { applied: { action: 'merged' } };
    });
  }

  private async applyRemote(remote: RemoteRecord, local: FileRecord | undefined, conflict: boolean): Promise<Settled> {
    // Before anything is made (parent folders, temp files): never inside an empty mount point.
    await this.components.checkFolder?.();
    const version = merge(local?.version ?? EMPTY_VECTOR, remote.version);
    // The losing local version is kept under a conflict name, unless it holds the same bytes.
    const loser = conflict && local !== undefined && !local.deleted && !sameBytes(local, remote) ? local : undefined;
    if (remote.deleted) return this.applyDelete(remote, local, version);
    switch (remote.type) {
      case 'file':
        if (local !== undefined && !local.deleted && local.type === 'file' && sameBytes(local, remote)) {
          return this.applyMetadata(remote, local, version);
        }
        return this.applyFile(remote, local, version, loser);
      case 'directory':
        return this.applyDirectory(remote, local, version, loser);
      case 'symlink':
        return this.applySymlink(remote, local, version, loser);
    }
  }

  /** Pulls a file into its temp file, then, under the lock, puts it in place and records it. */
  private async applyFile(remote: RemoteRecord, local: FileRecord | undefined, version: VersionVector, loser: FileRecord | undefined): Promise<Settled> {
    const { root } = this.components;
    const absolute = toAbsolute(root, remote.path);
    // Checked before any byte moves, and again under the lock right before the rename.
    if ((await ensureRealParents(root, remote.path, false)) === 'present' && !diskMatches(local, await lstatOrUndefined(absolute))) {
      return skipped('changed-locally');
    }
    const moved = loser === undefined ? await this.moveFromDeleted(remote, local, version) : undefined;
    if (moved !== undefined) return moved;
    const { pulled, peer } = await this.pullFromAny(remote, local);
    const pull: PullSummary = {
      peer,
      source: pulled.source,
      ...(pulled.basis === undefined ? {} : { basis: pulled.basis }),
      ...(pulled.from === undefined ? {} : { from: pulled.from }),
      attempts: pulled.attempts,
      literalBytes: pulled.literalBytes,
      reusedBytes: pulled.reusedBytes,
    };
    const temp = toAbsolute(root, pulled.temp);
    try {
      await finishFile(temp, remote.mode & APPLIED_MODE_MASK, remote.mtimeNs);
      return await this.placeTemp(temp, remote, local, version, loser, { action: 'file', pull });
    } finally {
      // Only an interrupted transfer leaves its temp file (the next attempt's basis): once pulled,
      // the file is in place, or the path changed and will be decided again; no litter either way.
      await this.puller.discard(remote);
    }
  }

  /**
   * Renames a local file this apply deletes to `remote.path` when it holds the content (see
   * MoveSources), under the lock: only if the new path is still as `local` says, and the old file
   * still its stored record and on disk as recorded. The old path's delete then finds it gone and
   * records only the tombstone. Undefined when no file fits or it changed: the file is pulled then
   * (copied, or transferred). A crash before the commit leaves the file at its new path, unrecorded:
   * the next scan records the move, which is no conflict with the remote's (the same content).
   */
  private async moveFromDeleted(remote: RemoteRecord, local: FileRecord | undefined, version: VersionVector): Promise<Settled | undefined> {
    const { root, store } = this.components;
    const source = await this.moves?.find(remote, local, store, () => this.localContent());
    if (source === undefined) return undefined;
    await ensureRealParents(root, remote.path, true);
    return this.locked<Settled | undefined>(remote.path, local, async (stats, absolute) => {
      if (!diskMatches(local, stats)) return skipped('changed-locally');
      const from = toAbsolute(root, source.path);
      if ((await store.get(source.path))?.sequence !== source.sequence) return undefined;
      if ((await ensureRealParents(root, source.path, false)) === 'missing' || !diskMatches(source, await lstatOrUndefined(from))) return undefined;
      await rename(from, absolute);
      const after = await finishFile(absolute, remote.mode & APPLIED_MODE_MASK, remote.mtimeNs);
      await syncDirectory(dirname(absolute));
      if (dirname(from) !== dirname(absolute)) await syncDirectory(dirname(from));
      crashPoint('placed-before-commit');
      await this.commit(contentChangeOf(remote, after, version));
      this.index?.remove(source.path);
      const pull: PullSummary = { peer: remote.peer, source: 'move', from: source.path, attempts: [], literalBytes: 0, reusedBytes: remote.size };
      return { applied: { action: 'file', pull } };
    });
  }

  /**
   * Pulls from the record's sources in turn (see ApplierInit.sources), asked again after each
   * failure, since a peer with the version may have connected meanwhile: a peer that fails or goes
   * away mid-transfer leaves its partial file, which the next one's delta builds on. A missing
   * folder, or no source left untried, ends it: the last failure is thrown, with its peer.
   */
  private async pullFromAny(remote: RemoteRecord, local: FileRecord | undefined): Promise<{ pulled: PulledFile; peer: string }> {
    const tried = new Set<string>();
    const untried = (): string | undefined => this.components.sources?.(remote).find((p) => !tried.has(p));
    let peer = untried() ?? remote.peer;
    for (;;) {
      tried.add(peer);
      try {
        return { pulled: await this.puller.pull(peer === remote.peer ? remote : { ...remote, peer }, local), peer };
      } catch (error) {
        this.components.onPullFailed?.(peer, error);
        const next = error instanceof FolderMissingError || tried.size >= MAX_PULL_SOURCES ? undefined : untried();
        if (next === undefined) {
          if (typeof error === 'object' && error !== null) this.failedPeers.set(error, peer);
          throw error;
        }
        peer = next;
      }
    }
  }

  /**
   * Under the folder lock, puts the finished file or link at `temp` in place of `remote.path`: only
   * if the path is still what `local` says; a losing local version is first kept as a conflict copy,
   * and a folder in the way is removed only if empty. Then fsyncs the folder and records `remote`.
   */
  private placeTemp(
    temp: string,
    remote: RemoteRecord,
    local: FileRecord | undefined,
    version: VersionVector,
    loser: FileRecord | undefined,
    applied: Omit<AppliedPath, 'status' | 'path' | 'decision' | 'conflictCopy'>,
  ): Promise<Settled> {
    return this.locked(remote.path, local, async (stats, absolute) => {
      if (!diskMatches(local, stats)) return skipped('changed-locally');
      const conflictCopy = loser === undefined ? undefined : await this.keepLoser(loser);
      if (conflictCopy === undefined && stats?.isDirectory() === true && !(await removeEmptyFolder(absolute))) return skipped('kept-folder');
      await rename(temp, absolute);
      await syncDirectory(dirname(absolute));
      crashPoint('placed-before-commit');
      const after = await lstat(absolute, { bigint: true });
      await this.commit(contentChangeOf(remote, after, version));
      return { applied: { ...applied, ...(conflictCopy === undefined ? {} : { conflictCopy }) } };
    });
  }

  /** Same bytes as the local file: only permissions and mtime change (no copy of a large file for a chmod). */
  private applyMetadata(remote: RemoteRecord, local: FileRecord, version: VersionVector): Promise<Settled> {
    return this.locked(remote.path, local, async (stats, absolute) => {
      if (!diskMatches(local, stats)) return skipped('changed-locally');
      const after = await finishFile(absolute, remote.mode & APPLIED_MODE_MASK, remote.mtimeNs);
      await this.commit(contentChangeOf(remote, after, version));
      return { applied: { action: 'metadata' } };
    });
  }

  private applyDirectory(remote: RemoteRecord, local: FileRecord | undefined, version: VersionVector, loser: FileRecord | undefined): Promise<Settled> {
    const mode = remote.mode & APPLIED_MODE_MASK;
    return this.locked(remote.path, local, async (stats, absolute) => {
      // A folder already there that no record knows (made locally, not yet scanned) is adopted.
      const adopt = (local === undefined || local.deleted) && stats?.isDirectory() === true;
      if (!adopt && !diskMatches(local, stats)) return skipped('changed-locally');
      await ensureRealParents(this.components.root, remote.path, true);
      const conflictCopy = loser === undefined ? undefined : await this.keepLoser(loser);
      // Else a dominated file or symlink at the path (checked above) is replaced by the folder.
      if (conflictCopy === undefined && stats !== undefined && !stats.isDirectory()) await unlink(absolute);
      if (conflictCopy !== undefined || stats?.isDirectory() !== true) await mkdir(absolute, { mode });
      await chmod(absolute, mode);
      await syncDirectory(dirname(absolute));
      const after = await lstat(absolute, { bigint: true });
      if (!after.isDirectory()) throw new Error(`${JSON.stringify(remote.path)} is not a folder after it was made`);
      await this.commit(contentChangeOf(remote, after, version));
      return { applied: { action: 'directory', ...(conflictCopy === undefined ? {} : { conflictCopy }) } };
    });
  }

  /** Makes the link at a temp name, then renames it into place: an existing link is replaced atomically. */
  private async applySymlink(remote: RemoteRecord, local: FileRecord | undefined, version: VersionVector, loser: FileRecord | undefined): Promise<Settled> {
    const { root } = this.components;
    await ensureRealParents(root, remote.path, true);
    const temp = toAbsolute(root, tempPathOf(remote.path, remote.contentHash));
    await removePlanted(temp);
    await symlink(remote.symlinkTarget, temp);
    let settled: Settled | undefined;
    try {
      settled = await this.placeTemp(temp, remote, local, version, loser, { action: 'symlink' });
    } finally {
      if (settled === undefined || 'skipped' in settled) await unlinkIfPresent(temp);
    }
    return settled;
  }

  /**
   * A delete: only of the version that was deleted (the disk must still match the local record;
   * if not, edit beats delete: kept), never through a symlinked parent, and a folder only when it
   * is empty (its deleted contents went first); then the tombstone, with the remote's version.
   */
  private applyDelete(remote: RemoteRecord, local: FileRecord | undefined, version: VersionVector): Promise<Settled> {
    const tombstone = tombstoneOf(remote, version);
    return this.locked(remote.path, local, async (stats, absolute) => {
      // Nothing recorded, or already gone: only the tombstone (a file made here since is the scanner's to find).
      if (local === undefined || local.deleted || stats === undefined) {
        await this.commit(tombstone);
        return { applied: { action: 'tombstone' } };
      }
      if (!diskMatches(local, stats)) return skipped('kept-edit');
      if (stats.isDirectory()) {
        if (!(await removeEmptyFolder(absolute))) return skipped('kept-folder');
      } else {
        await unlink(absolute); // a symlink itself, never its target
      }
      await syncDirectory(dirname(absolute));
      await this.commit(tombstone);
      return { applied: { action: 'deleted' } };
    });
  }

  /** Renames the losing local version to its conflict name (under the lock); the scanner records it later. */
  private async keepLoser(loser: FileRecord): Promise<string> {
    const { root } = this.components;
    const copy = conflictName(loser.path, loser.mtimeNs, loser.modifiedBy);
    const copyAbsolute = toAbsolute(root, copy);
    if ((await lstatOrUndefined(copyAbsolute)) !== undefined) {
      throw new ConflictCopyExistsError(`cannot keep the losing version of ${JSON.stringify(loser.path)}: ${JSON.stringify(copy)} exists`);
    }
    await rename(toAbsolute(root, loser.path), copyAbsolute);
    this.rescans.add(copy);
    // What was recorded under a folder that lost is now under the copy: the scan of the path
    // records those deletes.
    if (loser.type === 'directory') this.rescans.add(loser.path);
    return copy;
  }

  /**
   * Runs `work` holding the folder lock, after checking that the folder is still there, that the
   * path's record is still `expected` (a scan may have recorded a change since the decision) and
   * that every parent is a real folder; `work` gets what lstat shows at the path (undefined when
   * nothing is there or a parent is missing).
   */
  private locked<T extends Settled | undefined = Settled>(
    path: string,
    expected: FileRecord | undefined,
    work: (stats: BigIntStats | undefined, absolute: string) => Promise<T>,
  ): Promise<T | Settled> {
    const { root, store, lock, checkFolder } = this.components;
    return lock.run(async () => {
      await checkFolder?.();
      const current = await store.get(path);
      if (current?.sequence !== expected?.sequence) return skipped('changed-locally');
      const absolute = toAbsolute(root, path);
      const parents = await ensureRealParents(root, path, false);
      return work(parents === 'missing' ? undefined : await lstatOrUndefined(absolute), absolute);
    });
  }

  private async commit(change: FileChange): Promise<void> {
    const [stored] = await this.components.store.commit([change]);
    this.index?.add(stored);
  }

  /**
   * The index of local content, made on first use; its pass over the records, if made, keeps only
   * the files that hold content this apply may pull: never an entry per file of a large folder.
   */
  private localContent(): LocalContentIndex {
    this.index ??= new LocalContentIndex(this.components.store, this.wantedContent());
    return this.index;
  }

  /** The content and blocks of every file version this apply may pull, made once `pulling` is complete (in run()). */
  private wantedContent(): WantedContent {
    this.wanted ??= new WantedContent(this.pulling);
    return this.wanted;
  }
}

/** Same type and bytes (content hash, target): permissions aside. */
function sameBytes(a: Pick<FileRecord, 'type' | 'contentHash' | 'symlinkTarget'>, b: Pick<FileRecord, 'type' | 'contentHash' | 'symlinkTarget'>): boolean {
  return a.type === b.type && a.symlinkTarget === b.symlinkTarget && Buffer.from(a.contentHash).equals(b.contentHash);
}

/** A stored record as a change to commit (the store assigns a new sequence). */
function changeOf(record: FileRecord): FileChange {
  const { path, type, size, mtimeNs, mode, inode, blockHashes, contentHash, symlinkTarget, version, deleted, modifiedBy } = record;
  return { path, type, size, mtimeNs, mode, inode, blockHashes, contentHash, symlinkTarget, version, deleted, modifiedBy };
}

/** Whether the peer is to blame for a failure: its record, its delta or its bytes were wrong. */
function isPeerFault(error: unknown): boolean {
  return misbehaviourOf(error) !== undefined;
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

