import { baseName, MAX_NAME_BYTES, parentPath } from '../folder/paths.js';
import type { DeviceId } from '../store/version-vector.js';

/** What every conflict copy's name holds, between the name and its extension. */
export const CONFLICT_MARKER = '.sync-conflict-';
/** Digits of the device id in a conflict copy's name (Syncthing shows 7 characters too). */
export const CONFLICT_DEVICE_DIGITS = 7;

/**
 * The name the losing version of a conflict is kept under, as Syncthing names it:
 * `dir/NAME.sync-conflict-YYYYMMDD-HHMMSS-DEVICE7.EXT`, where the time is `mtimeNs` (the losing
 * version's modification time) in UTC, DEVICE7 the first 7 hex digits of the device that made the
 * losing version, and EXT the last `.ext` of the base name. A name without a dot, or a dotfile with
 * no other dot (`.bashrc`), has no extension: the suffix goes at the end. Every device computes the
 * same name from the same losing version.
 *
 * A name that would pass NAME_MAX (255 bytes) is shortened at the end of NAME (never inside a
 * character); an extension too long to keep is then treated as part of the name.
 */
export function conflictName(path: string, mtimeNs: bigint, device: DeviceId): string {
  const parent = parentPath(path);
  const name = baseName(path);
  const suffix = `${CONFLICT_MARKER}${formatUtc(mtimeNs)}-${device.slice(0, CONFLICT_DEVICE_DIGITS)}`;
  let [stem, extension] = splitExtension(name);
  const room = MAX_NAME_BYTES - Buffer.byteLength(suffix);
  if (Buffer.byteLength(extension) >= room) {
    stem = name;
    extension = '';
  }
  const conflicted = `${truncateToBytes(stem, room - Buffer.byteLength(extension))}${suffix}${extension}`;
  return parent === '' ? conflicted : `${parent}/${conflicted}`;
}

/** NAME and `.EXT` ('' when there is none) of a base name. */
export function splitExtension(name: string): [string, string] {
  const dot = name.lastIndexOf('.');
  // No dot, or only the leading dot of a dotfile: no extension.
  if (dot <= 0) return [name, ''];
  return [name.slice(0, dot), name.slice(dot)];
}

/** `text` cut to at most `bytes` UTF-8 bytes, at a character boundary. */
function truncateToBytes(text: string, bytes: number): string {
  if (Buffer.byteLength(text) <= bytes) return text;
  let out = '';
  let used = 0;
  for (const character of text) {
    const length = Buffer.byteLength(character);
    if (used + length > bytes) break;
    out += character;
    used += length;
  }
  return out;
}

/** YYYYMMDD-HHMMSS in UTC of a time in nanoseconds (whole seconds, rounded down). */
function formatUtc(mtimeNs: bigint): string {
  let ms = mtimeNs / 1_000_000n;
  if (mtimeNs < 0n && mtimeNs % 1_000_000n !== 0n) ms -= 1n; // floor, not toward zero
  const date = new Date(Number(ms));
  const two = (value: number) => String(value).padStart(2, '0');
  const year = String(date.getUTCFullYear()).padStart(4, '0');
  const day = `${year}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}`;
  return `${day}-${two(date.getUTCHours())}${two(date.getUTCMinutes())}${two(date.getUTCSeconds())}`;
}

// NAME, the time, DEVICE7, and .EXT (optional) of a conflict copy's base name.
const CONFLICT_NAME = new RegExp(`^(.+)${CONFLICT_MARKER.replaceAll('.', '\\.')}(\\d{8}-\\d{6})-([0-9a-f]{${CONFLICT_DEVICE_DIGITS}})(\\.[^.]*)?$`, 'u');

/** What a conflict copy's name says: the path it is a copy of, and the device (7 hex digits) whose version it keeps. */
export interface ConflictCopy {
  readonly original: string;
  readonly device: string;
}

/**
 * The original path of a conflict copy (see conflictName), or undefined when `path` is not named
 * like one. A name shortened to fit NAME_MAX gives its shortened original.
 */
export function parseConflictName(path: string): ConflictCopy | undefined {
  const parent = parentPath(path);
  const match = CONFLICT_NAME.exec(baseName(path));
  if (match === null) return undefined;
  const name = `${match[1]}${match[4] ?? ''}`;
  return { original: parent === '' ? name : `${parent}/${name}`, device: match[3] };
}
