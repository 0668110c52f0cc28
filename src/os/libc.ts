import type { LibraryHandle } from 'koffi';

/**
 * The C library through the koffi FFI, for the few calls Node does not offer (malloc_trim, madvise,
 * fcntl), or undefined where it cannot be had: not Linux, not glibc (libc.so.6), or no koffi build
 * for this machine. Loaded once and shared.
 */
let libc: Promise<LibraryHandle | undefined> | undefined;

export function loadLibc(): Promise<LibraryHandle | undefined> {
  libc ??= (async () => {
    if (process.platform !== 'linux') return undefined;
    try {
      const { default: koffi } = await import('koffi');
      return koffi.load('libc.so.6');
    } catch {
      return undefined;
    }
  })();
  return libc;
}

/** madvise(2): 0 on success. */
export type Madvise = (addr: bigint, length: bigint, advice: number) => number;

/** madvise through the C library, or undefined where it cannot be had (see loadLibc). */
export async function loadMadvise(): Promise<Madvise | undefined> {
  const library = await loadLibc();
  if (library === undefined) return undefined;
  try {
    return library.func('int madvise(uintptr_t addr, size_t length, int advice)') as Madvise;
  } catch {
    return undefined;
  }
}
