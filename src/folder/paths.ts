import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { InvalidPathError, PathOutsideRootError } from './errors.js';

/**
 * Folder-relative paths as mesh records and sends them: '/'-separated, Unicode NFC, no empty, '.' or
 * '..' segment. The same check guards names found on disk and, later, paths a peer sends.
 */

/** Longest name of one path segment, in UTF-8 bytes (NAME_MAX on Linux and macOS). */
export const MAX_NAME_BYTES = 255;
/** Longest relative path, in UTF-8 bytes (PATH_MAX on Linux). */
export const MAX_PATH_BYTES = 4096;

// C0 controls, DEL and C1 controls: never in a synced name (terminal escapes, log injection).
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/u;
// A surrogate half not part of a pair: not valid Unicode, cannot be encoded as UTF-8.
const LONE_SURROGATE = /\p{Cs}/u;
// "C:" as the first segment is a drive on Windows: "C:/x" would leave the folder there.
const DRIVE_LETTER = /^[A-Za-z]:$/;

// Printable ASCII: no control character, no surrogate, already NFC, one byte per character.
const PRINTABLE_ASCII = /^[\u0020-\u007e]*$/;

/** Why `path` is not a valid folder-relative path, or undefined when it is. */
export function relativePathProblem(path: string): string | undefined {
  if (path.length === 0) return 'empty';
  if (path.startsWith('/')) return 'absolute';
  if (path.includes('\\')) return 'contains a backslash';
  // Most paths are printable ASCII: the Unicode checks (the costly part, for every record sent or received) cannot fail.
  const ascii = PRINTABLE_ASCII.test(path);
  if (!ascii) {
    if (CONTROL_CHARACTER.test(path)) return 'contains a control character';
    if (LONE_SURROGATE.test(path)) return 'is not valid Unicode';
    if (path.normalize('NFC') !== path) return 'is not in Unicode NFC form';
  }
  if ((ascii ? path.length : Buffer.byteLength(path)) > MAX_PATH_BYTES) return `longer than ${MAX_PATH_BYTES} bytes`;
  const segments = path.split('/');
  if (DRIVE_LETTER.test(segments[0])) return 'starts with a drive letter';
  for (const segment of segments) {
    if (segment === '') return 'has an empty segment';
    if (segment === '.' || segment === '..') return `has a "${segment}" segment`;
    if ((ascii ? segment.length : Buffer.byteLength(segment)) > MAX_NAME_BYTES) return `has a name longer than ${MAX_NAME_BYTES} bytes`;
  }
  return undefined;
}

/** Throws InvalidPathError unless `path` is a valid folder-relative path; returns it. */
export function checkRelativePath(path: string): string {
  const problem = relativePathProblem(path);
  if (problem !== undefined) throw new InvalidPathError(path, problem);
  return path;
}

/** Roots toAbsolute has seen, each with the prefix of its paths (undefined: not normalized). */
const rootPrefixes = new Map<string, string | undefined>();
/** A process has a few folder roots; tests make many: the map is emptied past this size. */
const MAX_ROOT_PREFIXES = 64;

/**
 * What a valid relative path is appended to under `root`: the root and one separator, when the
 * root is absolute and normalized (as resolve() gives it); undefined for any other root.
 */
function rootPrefix(root: string): string | undefined {
  if (rootPrefixes.has(root)) return rootPrefixes.get(root);
  const prefix = resolve(root) === root ? (root.endsWith(sep) ? root : root + sep) : undefined;
  if (rootPrefixes.size >= MAX_ROOT_PREFIXES) rootPrefixes.clear();
  rootPrefixes.set(root, prefix);
  return prefix;
}

/**
 * The absolute path of `path` under `root`, after checking it. Lexical only: it cannot leave the
 * root by its segments, but a symlinked parent is the caller's to refuse (the scanner lstats every
 * level and never follows one).
 */
export function toAbsolute(root: string, path: string): string {
  checkRelativePath(path);
  // A valid path has no empty, '.' or '..' segment and no separator but '/': under a normalized
  // root, joining is appending, and it cannot leave the root (join and relative: ~2 us a call
  // here, against ~0.3 for the rest).
  const prefix = rootPrefix(root);
  if (prefix !== undefined) return prefix + (sep === '/' ? path : path.replaceAll('/', sep));
  const absolute = join(root, ...path.split('/'));
  if (isRootOrOutside(relative(root, absolute))) {
    throw new PathOutsideRootError(`path ${JSON.stringify(path)} leaves the folder root`);
  }
  return absolute;
}

/**
 * Whether `back`, what path.relative(root, p) gave, says p is the root itself or lies outside it.
 * A '..' segment leaves; a name that only begins with two dots ('..x') is inside.
 */
export function isRootOrOutside(back: string): boolean {
  return back === '' || back === '..' || back.startsWith(`..${sep}`) || isAbsolute(back);
}

/** `name` inside the folder-relative directory `parent` ('' is the root). */
export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

/** The parent of a relative path, '' for a top-level one. */
export function parentPath(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** The last segment of a relative path. */
export function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

/** Whether `path` is `scope` or lies under it; the scope '' holds every path. */
export function isWithin(path: string, scope: string): boolean {
  return scope === '' || path === scope || (path.startsWith(scope) && path.charCodeAt(scope.length) === 0x2f);
}

/** `path` and each of its ancestors, deepest first: 'a/b/c', 'a/b', 'a'. */
export function* selfAndAncestors(path: string): Generator<string> {
  for (let at = path.length; at > 0; at = path.lastIndexOf('/', at - 1)) yield path.slice(0, at);
}

/** Whether `path` or one of its ancestors is in `paths`. */
export function isUnderAny(path: string, paths: ReadonlySet<string>): boolean {
  if (paths.size === 0) return false;
  for (const candidate of selfAndAncestors(path)) if (paths.has(candidate)) return true;
  return false;
}

/** Sorted paths with every path inside another one removed ('' holds them all). */
export function outermost(paths: readonly string[]): string[] {
  if (paths.includes('')) return [''];
  // Shorter first, so an ancestor is kept before its descendants are looked at.
  const byLength = [...new Set(paths)].sort((a, b) => a.length - b.length);
  const kept = new Set<string>();
  for (const path of byLength) if (!isUnderAny(path, kept)) kept.add(path);
  return [...kept].sort();
}
