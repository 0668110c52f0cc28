/**
 * The few pieces of the WebAssembly 1.0 binary format that mesh's hand-assembled kernels need
 * (the delta engine's rolling hash, the private network's Salsa20): LEB128 numbers, vectors,
 * names, sections and the module's frame. No toolchain, no native build: the same bytes run on
 * x86 and ARM.
 */

/** Unsigned LEB128. */
export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    const byte = v & 0x7f;
    v >>>= 7;
    out.push(v === 0 ? byte : byte | 0x80);
  } while (v !== 0);
  return out;
}

/** Signed LEB128 (i32 constants). */
export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) {
      out.push(byte);
      return out;
    }
    out.push(byte | 0x80);
  }
}

/** A SIMD instruction: the 0xfd prefix, then its opcode as LEB128. */
export const simd = (opcode: number): number[] => [0xfd, ...uleb(opcode)];

const V128_CONST = 0x0c;

/** A v128.const of four i32 lanes. */
export function v128Const(lanes: readonly number[]): number[] {
  return [...simd(V128_CONST), ...new Uint8Array(new Int32Array(lanes).buffer)];
}

export function vector(items: readonly number[][]): number[] {
  return [...uleb(items.length), ...items.flat()];
}

export function name(text: string): number[] {
  return [...uleb(text.length), ...Array.from(text, (c) => c.charCodeAt(0))];
}

function section(id: number, payload: readonly number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

/** The sections of a module that imports its memory and exports functions (already encoded). */
export interface ModuleParts {
  readonly types: number[];
  readonly imports: number[];
  readonly functions: number[];
  readonly exports: number[];
  /** The function bodies, each without its length. */
  readonly bodies: readonly number[][];
}

export function assembleModule(parts: ModuleParts): Uint8Array {
  const code = vector(parts.bodies.map((body) => [...uleb(body.length), ...body]));
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // "\0asm", version 1
    ...section(1, parts.types),
    ...section(2, parts.imports),
    ...section(3, parts.functions),
    ...section(7, parts.exports),
    ...section(10, code),
  ]);
}
