import type { BigIntStats } from 'node:fs';
import { join, sep } from 'node:path';
import type { EntryType } from '../store/types.js';
import { describeError, errorCode, isNotFound, type FolderFs } from './folder-fs.js';
import { isAlwaysIgnored, type IgnoreRules } from './ignore.js';
import { childPath, outermost, parentPath, relativePathProblem, toAbsolute } from './paths.js';
import { entryTypeOf, type EntryStats } from './records.js';

/** Entries of one directory examined at once (their lstat calls run in parallel). */
export const ENTRY_CONCURRENCY = 32;

/** An entry found on disk, under its NFC folder-relative path; never followed if a symlink. */
export interface WalkEntry {
  readonly path: string;
  readonly type: EntryType;
  readonly stats: EntryStats;
}

export interface WalkComponents {
  readonly root: string;
  readonly fs: FolderFs;
  readonly ignores: IgnoreRules;
  /**
   * A path that could not be read ('' for the folder root): reported, and nothing recorded at or
   * under it may be deleted.
   */
  readonly onUnreadable: (path: string, message: string) => void;
  /** A name that is skipped (not syncable): reported only. */
  readonly onSkipped: (path: string, message: string) => void;
}

// Link(2) is not supported here (FAT, exFAT, some network file systems): rename instead.
/**
 * `name` (one entry of a directory listing, or a checked path's last segment: no '/', never '.'
 * or '..') in the absolute directory `absolute`: path.join without its normalizing pass.
 */
function inDirectory(absolute: string, name: string): string {
  return absolute.endsWith(sep) ? `${absolute}${name}` : `${absolute}${sep}${name}`;
}

const NO_HARD_LINKS = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV', 'EMLINK']);
// A name of ASCII characters only is its own NFC form: no need to look for another spelling.
// eslint-disable-next-line no-control-regex
const ASCII = /^[\u0000-\u007f]*$/;
// What a name that is not valid UTF-8 decodes to: such a name cannot be opened again by its string.
const REPLACEMENT_CHARACTER = '\ufffd';

/**
 * Walks a folder tree with opendir and lstat, never following a symlink, one directory open at a
 * time and an explicit stack instead of recursion (a tree 10,000 levels deep is fine). Ignored
 * entries are skipped, not entered. Names not in NFC are renamed on disk to their NFC form when
 * no entry has that name (as Syncthing does on Linux), else skipped with a report.
 */
export class Walker {
  private lastDirectory = '';
  private lastAbsolute = '';

  constructor(private readonly components: WalkComponents) {}

  /**
   * The subtrees to walk for the requested (NFC, valid) paths: a path whose ancestor is no longer
   * a real directory (deleted, or now a file or a symlink) widens to that ancestor, so the change
   * of the ancestor is seen too and nothing under a symlink is ever entered. Sorted, none inside
   * another.
   */
  async resolveScopes(paths: readonly string[]): Promise<string[]> {
    const resolved: string[] = [];
    for (const path of paths) resolved.push(await this.resolveScope(path));
    return outermost(resolved);
  }

  /**
   * The entries in `scopes` (the scope roots themselves included, the folder root excluded), a
   * batch of one directory's entries at a time: a walk of 100,000 entries awaits per batch, not
   * per entry.
   */
  async *walk(scopes: readonly string[]): AsyncGenerator<readonly WalkEntry[]> {
    const directories: string[] = [];
    for (const scope of scopes) {
      if (scope === '') {
        directories.push('');
      } else {
        const entry = await this.scopeEntry(scope);
        if (entry === undefined) continue;
        yield [entry];
        if (entry.type === 'directory') directories.push(entry.path);
      }
      while (directories.length > 0) {
        const directory = directories.pop()!;
        for await (const batch of this.list(directory)) {
          yield batch;
          for (const entry of batch) if (entry.type === 'directory') directories.push(entry.path);
        }
      }
    }
  }

  private async resolveScope(path: string): Promise<string> {
    const segments = path.split('/');
    for (let depth = 1; depth < segments.length; depth++) {
      const ancestor = segments.slice(0, depth).join('/');
      try {
        const stats = await this.components.fs.lstat(this.absolute(ancestor));
        if (!stats.isDirectory()) return ancestor;
      } catch (error) {
        // Gone (or spelled differently on disk): walk from the ancestor, which finds out which.
        // Unreadable: keep the path; walking it reports the error and protects its records.
        if (isNotFound(error)) return ancestor;
        return path;
      }
    }
    return path;
  }

  /** The entry at a scope root: lstat by its NFC name, or by another spelling found in its parent. */
  private async scopeEntry(scope: string): Promise<WalkEntry | undefined> {
    const parent = parentPath(scope);
    const name = scope.slice(parent.length === 0 ? 0 : parent.length + 1);
    const entry = await this.visit(parent, name);
    if (entry !== undefined || ASCII.test(name)) return entry;
    // A name in NFD on disk (from a Mac, say) is not found by its NFC spelling on Linux.
    try {
      for await (const onDisk of this.components.fs.listDirectory(this.absolute(parent))) {
        if (onDisk !== name && onDisk.normalize('NFC') === name) return await this.visit(parent, onDisk);
      }
    } catch (error) {
      if (!isNotFound(error)) this.components.onUnreadable(parent, describeError(error));
    }
    return undefined;
  }

  /** The entries of one directory, in batches of up to ENTRY_CONCURRENCY (none empty). */
  private async *list(directory: string): AsyncGenerator<WalkEntry[]> {
    // Paths of non-ASCII names already produced here: two spellings of one name yield it once.
    const produced = new Set<string>();
    const batch: string[] = [];
    const examine = async (): Promise<WalkEntry[]> => {
      const names = batch.splice(0);
      // Names already in NFC in parallel; the others one by one, as each may rename on disk.
      const found = await Promise.all(names.map((name) => (name.normalize('NFC') === name ? this.visit(directory, name) : Promise.resolve(undefined))));
      for (const [index, name] of names.entries()) {
        if (found[index] === undefined && name.normalize('NFC') !== name) found[index] = await this.visit(directory, name);
      }
      const entries: WalkEntry[] = [];
      for (const [index, entry] of found.entries()) {
        if (entry === undefined) continue;
        if (!ASCII.test(names[index])) {
          if (produced.has(entry.path)) continue;
          produced.add(entry.path);
        }
        entries.push(entry);
      }
      return entries;
    };
    try {
      for await (const name of this.components.fs.listDirectory(this.absolute(directory))) {
        batch.push(name);
        if (batch.length >= ENTRY_CONCURRENCY) {
          const entries = await examine();
          if (entries.length > 0) yield entries;
        }
      }
      const entries = await examine();
      if (entries.length > 0) yield entries;
    } catch (error) {
      // Gone while walked: what was under it is unseen, so deleted. Unreadable: protected.
      if (!isNotFound(error)) this.components.onUnreadable(directory, describeError(error));
    }
  }

  /** One name in a directory: its entry, or undefined when it is skipped. */
  private async visit(directory: string, name: string): Promise<WalkEntry | undefined> {
    const { fs, ignores, onUnreadable, onSkipped } = this.components;
    const nfcName = name.normalize('NFC');
    const path = childPath(directory, nfcName);
    const problem = relativePathProblem(path);
    if (problem !== undefined) {
      onSkipped(childPath(directory, name), `not synced: the path ${problem}`);
      return undefined;
    }
    if (isAlwaysIgnored(path)) return undefined;
    let stats: BigIntStats;
    try {
      stats = await fs.lstat(inDirectory(this.absolute(directory), name));
    } catch (error) {
      if (isNotFound(error)) {
        if (name.includes(REPLACEMENT_CHARACTER)) onSkipped(childPath(directory, name), 'not synced: the name is not valid UTF-8');
        return undefined;
      }
      onUnreadable(path, describeError(error));
      return undefined;
    }
    const type = entryTypeOf(stats);
    if (type === undefined || ignores.isIgnored(path, type === 'directory')) return undefined;
    if (nfcName !== name) {
      const renamed = await this.renameToNfc(directory, name, nfcName, stats);
      if (renamed === undefined) return undefined;
      stats = renamed;
    }
    return { path, type, stats };
  }

  /**
   * Renames `name` to `nfcName` in `directory` unless an entry already has that name; returns the
   * entry's stats under its new name. Files and symlinks move by link then unlink, which cannot
   * replace an entry that appeared meanwhile; directories by rename, which cannot replace a
   * non-empty one.
   */
  private async renameToNfc(directory: string, name: string, nfcName: string, stats: BigIntStats): Promise<BigIntStats | undefined> {
    const { fs, onSkipped, onUnreadable } = this.components;
    const from = join(this.absolute(directory), name);
    const to = join(this.absolute(directory), nfcName);
    const path = childPath(directory, nfcName);
    const conflict = () => onSkipped(childPath(directory, name), `not synced: its name is not in Unicode NFC form and ${JSON.stringify(nfcName)} exists too`);
    try {
      const existing = await fs.lstat(to);
      // A file system that ignores normalization (as macOS does) finds the entry itself.
      if (existing.ino === stats.ino && existing.dev === stats.dev) return existing;
      conflict();
      return undefined;
    } catch (error) {
      if (!isNotFound(error)) {
        onUnreadable(path, describeError(error));
        return undefined;
      }
    }
    try {
      if (stats.isDirectory()) {
        await fs.rename(from, to);
      } else {
        try {
          await fs.link(from, to);
          await fs.unlink(from);
        } catch (error) {
          if (!NO_HARD_LINKS.has(errorCode(error) ?? '')) throw error;
          await fs.rename(from, to);
        }
      }
      return await fs.lstat(to);
    } catch (error) {
      if (errorCode(error) === 'EEXIST' || errorCode(error) === 'ENOTEMPTY') conflict();
      else onSkipped(childPath(directory, name), `not synced: could not rename it to its NFC form: ${describeError(error)}`);
      return undefined;
    }
  }

  private absolute(path: string): string {
    if (path === '') return this.components.root;
    // The entries of one directory are visited one after another: checked and joined once.
    if (path !== this.lastDirectory) {
      this.lastAbsolute = toAbsolute(this.components.root, path);
      this.lastDirectory = path;
    }
    return this.lastAbsolute;
  }
}
