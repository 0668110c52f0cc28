import { constants } from 'node:fs';
import { loadLibc } from '../os/libc.js';

/**
 * Direct I/O (O_DIRECT) for the large writes of pulled files: the bytes go from our buffer to the
 * disk without a copy into the page cache. On the 2-core VM the benchmarks run on, that copy into
 * newly used page-cache memory was what set a 256 MiB pull's pace (1 MiB writes took 7.6 ms each
 * in the receiver), and it evicts what the user's programs have cached for a file nobody has read
 * yet. Linux only (elsewhere, or where the C library cannot be called, files are written as before).
 */

/**
 * Alignment of a direct write's memory, file offset and length: the page size, a multiple of the
 * logical block size of every common disk (512 or 4096 bytes).
 */
export const DIRECT_IO_ALIGNMENT = 4096;

const F_GETFL = 3;
const F_SETFL = 4;
const O_DIRECT = constants.O_DIRECT ?? 0;

export interface DirectIo {
  /** A Buffer of `size` bytes whose memory starts at a DIRECT_IO_ALIGNMENT boundary. */
  alignedBuffer(size: number): Buffer;
  /**
   * Turns direct I/O on or off for an open file (its open file description): false where the
   * call failed (a file system without direct I/O, e.g. some FUSE ones, refuses it).
   */
  setDirect(fd: number, on: boolean): boolean;
}

let loaded: Promise<DirectIo | undefined> | undefined;

/** Direct I/O through fcntl and koffi, or undefined where it cannot be had (see loadLibc). Loaded once. */
export function loadDirectIo(): Promise<DirectIo | undefined> {
  loaded ??= (async () => {
    if (O_DIRECT === 0) return undefined;
    const libc = await loadLibc();
    if (libc === undefined) return undefined;
    try {
      const { default: koffi } = await import('koffi');
      const fcntl = libc.func('int fcntl(int fd, int cmd, ...)') as (fd: number, cmd: number, ...rest: unknown[]) => number;
      return {
        alignedBuffer(size) {
          // Node's large Buffers live outside V8's heap and never move, so an address found once holds.
          const raw = Buffer.allocUnsafeSlow(size + DIRECT_IO_ALIGNMENT);
          const misalignment = Number(koffi.address(raw) % BigInt(DIRECT_IO_ALIGNMENT));
          const start = misalignment === 0 ? 0 : DIRECT_IO_ALIGNMENT - misalignment;
          return raw.subarray(start, start + size);
        },
        setDirect(fd, on) {
          const flags = fcntl(fd, F_GETFL);
          if (flags < 0) return false;
          return fcntl(fd, F_SETFL, 'int', on ? flags | O_DIRECT : flags & ~O_DIRECT) === 0;
        },
      };
    } catch {
      return undefined; // no koffi build for this machine
    }
  })();
  return loaded;
}
