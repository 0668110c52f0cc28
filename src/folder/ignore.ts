import { createHash } from 'node:crypto';
import ignore, { type Ignore } from 'ignore';
import { TEMP_PREFIX } from '../fs/atomic-write.js';
import { IgnoreFileError } from './errors.js';
import { describeError, isNotFound, nodeFolderFs, type FolderFs } from './folder-fs.js';
import { STATE_DIRECTORY } from './folder-root.js';

/** The rules file at the folder root, in gitignore syntax. It is an ordinary file otherwise (synced). */
export const IGNORE_FILE = '.meshignore';
/** Largest `.meshignore` read: rules are lines of text, not data. */
export const MAX_IGNORE_FILE_BYTES = 1024 * 1024;

/** A line that is neither blank nor a comment (one starting with '#'): the text may have a rule. */
const RULE_LINE = /^(?!#).*\S/m;

/**
 * Paths mesh never records whatever the rules say: its state directory at the root, and its temp
 * files (a half-written download must never be synced as if the user made it).
 */
export function isAlwaysIgnored(path: string): boolean {
  if (path === STATE_DIRECTORY || path.startsWith(`${STATE_DIRECTORY}/`)) return true;
  for (let at = 0; at < path.length; ) {
    if (path.startsWith(TEMP_PREFIX, at)) return true;
    const slash = path.indexOf('/', at);
    if (slash < 0) break;
    at = slash + 1;
  }
  return false;
}

/**
 * The ignore rules of one folder: `<root>/.meshignore` (gitignore syntax, through the `ignore`
 * package, case-sensitive as git is on Linux, so every device decides alike) plus the paths that
 * are always ignored. An ignored path is never recorded; a record made before its path was ignored
 * is left as it is, not deleted (as Syncthing leaves ignored files alone).
 */
export class IgnoreRules {
  private matcher: Ignore = ignore({ ignorecase: false });
  private text = '';
  private hasRules = false;

  constructor(
    private readonly root: string,
    private readonly fs: FolderFs = nodeFolderFs,
  ) {}

  /** SHA-256 (hex) of the rules text in force: lets a caller notice the rules changed across runs. */
  get fingerprint(): string {
    return createHash('sha256').update(this.text).digest('hex');
  }

  /**
   * Reads `.meshignore` again; returns whether the rules changed. A missing file means no rules; an
   * unreadable one throws IgnoreFileError (scanning without the rules would record ignored files).
   */
  async reload(): Promise<boolean> {
    const text = await this.readRules();
    const changed = text !== this.text;
    this.use(text);
    return changed;
  }

  /** The text of the rules in force (to hand the same rules to a walk on another thread). */
  get rulesText(): string {
    return this.text;
  }

  /** Rules from `text` instead of the file: a walk on a worker thread uses the scan's own rules. */
  static fromText(root: string, text: string): IgnoreRules {
    const rules = new IgnoreRules(root);
    rules.use(text);
    return rules;
  }

  private use(text: string): void {
    // A new matcher even for the same rules: the old one caches every path it was asked about.
    this.matcher = ignore({ ignorecase: false }).add(text);
    this.text = text;
    this.hasRules = RULE_LINE.test(text);
  }

  /** Whether the folder-relative `path` is ignored (by itself or by an ignored parent directory). */
  isIgnored(path: string, isDirectory: boolean): boolean {
    if (isAlwaysIgnored(path)) return true;
    // No rules, nothing to match (and no cache entry per path asked about).
    if (!this.hasRules) return false;
    return this.matcher.ignores(isDirectory ? `${path}/` : path);
  }

  private async readRules(): Promise<string> {
    const path = `${this.root}/${IGNORE_FILE}`;
    let file;
    try {
      file = await this.fs.openForReading(path);
    } catch (error) {
      if (isNotFound(error)) return '';
      throw new IgnoreFileError(`cannot read ${IGNORE_FILE}: ${describeError(error)}`);
    }
    try {
      const stats = await file.stat();
      if (!stats.isFile()) throw new IgnoreFileError(`${IGNORE_FILE} is not a regular file`);
      if (stats.size > MAX_IGNORE_FILE_BYTES) throw new IgnoreFileError(`${IGNORE_FILE} is larger than ${MAX_IGNORE_FILE_BYTES} bytes`);
      const buffer = Buffer.alloc(Number(stats.size));
      let length = 0;
      while (length < buffer.length) {
        const read = await file.read(buffer.subarray(length), length);
        if (read === 0) break;
        length += read;
      }
      return buffer.subarray(0, length).toString('utf8');
    } catch (error) {
      if (error instanceof IgnoreFileError) throw error;
      throw new IgnoreFileError(`cannot read ${IGNORE_FILE}: ${describeError(error)}`);
    } finally {
      await file.close();
    }
  }
}
