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
  if (!DEVICE_ID.test(device)) throw new VersionVectorError(`not a device id: ${device}`);
  const next = vector.filter((c) => c.device !== device);
  next.push({ device, value: counterOf(vector, device) + 1 });
  return next.sort((a, b) => (a.device < b.device ? -1 : 1));
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
  const writer = new ByteWriter(1 + vector.length * 12);
  writer.varint(vector.length);
  for (const { device, value } of vector) {
    writer.bytes(Buffer.from(device, 'hex'));
    writer.varint(value);
  }
  return writer.take();
}

/** Reads and checks an encoded vector: bounded count, sorted distinct devices, no zero counter. */
export async function decodeVector(reader: ByteReader): Promise<VersionVector> {
  const count = await reader.varint('a version vector size');
  if (count > MAX_VECTOR_DEVICES) throw new VersionVectorError(`version vector of ${count} devices (at most ${MAX_VECTOR_DEVICES})`);
  const out: Counter[] = [];
  for (let k = 0; k < count; k++) {
    const device = Buffer.from(await reader.bytes(8, 'a device id')).toString('hex');
    const value = await reader.varint('a counter');
    if (value === 0) throw new VersionVectorError('version vector has a zero counter');
    if (out.length > 0 && out[out.length - 1].device >= device) throw new VersionVectorError('version vector devices out of order');
    out.push({ device, value });
  }
  return out;
}

export function vectorToString(vector: VersionVector): string {
  return vector.map((c) => `${c.device.slice(0, 7)}:${c.value}`).join(',') || '-';
}
