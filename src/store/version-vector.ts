import { ByteReader, ByteWriter } from '../delta/byte-reader.js';

/**
 * Version vectors: which device has made how many changes to a file. Every device that edits a file
 * bumps its own counter; a version that has seen every change of another (each counter >= the other's)
 * dominates it, and two versions that each have a change the other lacks are concurrent: a conflict.
 * Decisions are made on these, never on wall clocks.
 */

/** A device's short id: 16 lowercase hex digits (64 bits), as Syncthing's short device id. */
export type DeviceId = string;

export interface Counter {
  readonly device: DeviceId;
  readonly value: number;
}

/** Counters sorted by device, none zero. Immutable: every operation returns a new vector. */
export type VersionVector = readonly Counter[];

export type Ordering = 'equal' | 'dominates' | 'dominated' | 'concurrent';

export const EMPTY_VECTOR: VersionVector = [];

const DEVICE_ID = /^[0-9a-f]{16}$/;
/** A device id in binary: 64 bits. */
export const DEVICE_ID_BYTES = 8;
/** Most devices one vector may name: a decoder's bound, far above any real mesh. */
export const MAX_VECTOR_DEVICES = 1024;

export class VersionVectorError extends Error {
  override name = 'VersionVectorError';
}

export function isDeviceId(value: string): value is DeviceId {
  return DEVICE_ID.test(value);
}

export function counterOf(vector: VersionVector, device: DeviceId): number {
  return vector.find((c) => c.device === device)?.value ?? 0;
}

/** The vector after `device` makes one more change. */
export function increment(vector: VersionVector, device: DeviceId): VersionVector {
  if (!isDeviceId(device)) throw new VersionVectorError(`not a device id: ${String(device)}`);
  const value = counterOf(vector, device) + 1;
  // Past 2^53 a counter would stop changing: the new version would equal the old one.
  if (value > Number.MAX_SAFE_INTEGER) throw new VersionVectorError(`counter of ${device} is at its maximum`);
  const next = vector.filter((c) => c.device !== device);
  next.push({ device, value });
  return next.sort((a, b) => (a.device < b.device ? -1 : 1));
}

/**
 * Why `vector` breaks the rules every operation relies on (sorted distinct devices, valid ids,
 * counters that are safe integers above zero, at most MAX_VECTOR_DEVICES), or undefined if it keeps them.
 */
export function vectorProblem(vector: VersionVector): string | undefined {
  if (vector.length > MAX_VECTOR_DEVICES) return `version vector of ${vector.length} devices (at most ${MAX_VECTOR_DEVICES})`;
  for (let k = 0; k < vector.length; k++) {
    const { device, value } = vector[k];
    if (!isDeviceId(device)) return `version vector has a bad device id: ${JSON.stringify(device)}`;
    if (!Number.isSafeInteger(value) || value < 1) return `version vector has a bad counter: ${value}`;
    if (k > 0 && vector[k - 1].device >= device) return 'version vector devices out of order';
  }
  return undefined;
}

/** The least vector that dominates or equals both: every counter at its maximum. */
export function merge(a: VersionVector, b: VersionVector): VersionVector {
  const out: Counter[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i].device < b[j].device)) out.push(a[i++]);
    else if (i >= a.length || b[j].device < a[i].device) out.push(b[j++]);
    else {
      out.push({ device: a[i].device, value: Math.max(a[i].value, b[j].value) });
      i++;
      j++;
    }
  }
  return out;
}

/** How `a` relates to `b`. */
export function compare(a: VersionVector, b: VersionVector): Ordering {
  let aAhead = false;
  let bAhead = false;
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (j >= b.length || (i < a.length && a[i].device < b[j].device)) {
      aAhead = true;
      i++;
    } else if (i >= a.length || b[j].device < a[i].device) {
      bAhead = true;
      j++;
    } else {
      if (a[i].value > b[j].value) aAhead = true;
      else if (a[i].value < b[j].value) bAhead = true;
      i++;
      j++;
    }
  }
  if (aAhead && bAhead) return 'concurrent';
  if (aAhead) return 'dominates';
  if (bAhead) return 'dominated';
  return 'equal';
}

/** Compact form: device count, then per device its 8 id bytes and its counter (varints). */
export function encodeVector(vector: VersionVector): Uint8Array {
  // A malformed vector would encode to bytes that decode as something else, or not at all.
  const problem = vectorProblem(vector);
  if (problem !== undefined) throw new VersionVectorError(problem);
  const writer = new ByteWriter(1 + vector.length * 12);
  writer.varint(vector.length);
  for (const { device, value } of vector) {
    writer.bytes(Buffer.from(device, 'hex'));
    writer.varint(value);
  }
  return writer.take();
}

/**
 * Reads and checks an encoded vector: bounded count, sorted distinct devices, no zero counter.
 * Every problem, truncation included, is reported through the reader's `fail`: a vector is a part
 * of some larger format (an index message, a record), and that format's error is the one its
 * caller catches. A reader made for a vector alone can pass `(m) => new VersionVectorError(m)`.
 */
export async function decodeVector(reader: ByteReader): Promise<VersionVector> {
  const count = await reader.varint('a version vector size');
  if (count > MAX_VECTOR_DEVICES) throw reader.fail(`version vector of ${count} devices (at most ${MAX_VECTOR_DEVICES})`);
  const out: Counter[] = [];
  for (let k = 0; k < count; k++) {
    const device = Buffer.from(await reader.bytes(DEVICE_ID_BYTES, 'a device id')).toString('hex');
    const value = await reader.varint('a counter');
    if (value === 0) throw reader.fail('version vector has a zero counter');
    if (out.length > 0 && out[out.length - 1].device >= device) throw reader.fail('version vector devices out of order');
    out.push({ device, value });
  }
  return out;
}

export function vectorToString(vector: VersionVector): string {
  return vector.map((c) => `${c.device.slice(0, 7)}:${c.value}`).join(',') || '-';
}
