import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { stat } from 'node:fs/promises';
import type { Command } from 'commander';
import {
  applyDelta,
  checkSignatureOptions,
  decodeSignature,
  encodeDelta,
  encodeSignature,
  newDeltaStats,
  newPatchStats,
  openBasis,
  readFileChunks,
  signatureOptionsFor,
  VerificationError,
  type SignatureOptions,
} from '../delta/index.js';
import { writeFileAtomic } from '../fs/atomic-write.js';
import { CliError, EXIT_USAGE, printable } from './errors.js';
import { parseInteger } from './options.js';

const STDIO = '-';

interface OutputOptions {
  force?: boolean;
  stats?: boolean;
  fsync?: boolean;
}

/**
 * An input file or stdin. `recycle`: the consumer copies or hashes each chunk before asking for the
 * next, so read buffers can go round instead of being allocated per chunk.
 */
function input(path: string, recycle = false): AsyncIterable<Uint8Array> {
  return path === STDIO ? (process.stdin as AsyncIterable<Uint8Array>) : readFileChunks(path, { recycle });
}

/**
 * Writes to stdout, or atomically to a file (never a half-written file under the real name). Like
 * rdiff and rsync it leaves flushing to the disk to the system unless asked (--fsync).
 */
async function output(path: string, chunks: AsyncIterable<Uint8Array>, options: OutputOptions): Promise<void> {
  if (path === STDIO) {
    await pipeline(Readable.from(chunks, { objectMode: false }), process.stdout as Writable);
    return;
  }
  await writeFileAtomic(path, chunks, { exclusive: options.force !== true, sync: options.fsync === true });
}

/** The options every rdiff command that writes a file shares. */
function outputOptions(command: Command, what: string): Command {
  return command
    .option('-f, --force', `replace ${what} if it exists`)
    .option('--fsync', `flush ${what} to the disk before finishing (survives a power cut)`)
    .option('-s, --stats', 'print statistics on stderr');
}

function onlyOneStdin(...paths: string[]): void {
  if (paths.filter((p) => p === STDIO).length > 1) throw new CliError('only one input can be read from stdin (-)', EXIT_USAGE);
}

async function fileLength(path: string): Promise<number | undefined> {
  if (path === STDIO) return undefined;
  const info = await stat(path);
  if (!info.isFile()) throw new CliError(`${printable(path)}: not a regular file`);
  return info.size;
}

function report(options: OutputOptions, line: string): void {
  if (options.stats === true) process.stderr.write(`${line}\n`);
}

/** `mesh rdiff`: the delta engine as a command, in the spirit of librsync's rdiff. */
export function registerRdiff(program: Command): void {
  const rdiff = program
    .command('rdiff')
    .description('compute and apply rsync-style signatures and deltas between files (- is stdin/stdout)');

  outputOptions(rdiff.command('signature'), 'SIG')
    .description('write the signature of OLD to SIG')
    .argument('<old>', 'basis file, or - for stdin')
    .argument('<sig>', 'signature to write, or - for stdout')
    .option('-b, --block-size <bytes>', 'block length (default: from the file length, as rsync)', (v) => parseInteger(v, '--block-size'))
    .option('-S, --sum-size <bytes>', 'bytes of strong hash per block, 2 to 16 (default: from the file length)', (v) =>
      parseInteger(v, '--sum-size'),
    )
    .action(async (old: string, sig: string, options: OutputOptions & { blockSize?: number; sumSize?: number }) => {
      const sizing: SignatureOptions = signatureOptionsFor(await fileLength(old));
      if (options.blockSize !== undefined) sizing.blockLength = options.blockSize;
      if (options.sumSize !== undefined) sizing.strongLength = options.sumSize;
      try {
        checkSignatureOptions(sizing);
      } catch (error) {
        throw new CliError((error as Error).message, EXIT_USAGE);
      }
      await output(sig, encodeSignature(input(old, true), sizing), options);
      report(options, `signature: blocks of ${sizing.blockLength} bytes, ${sizing.strongLength}-byte strong hashes`);
    });

  outputOptions(rdiff.command('delta'), 'DELTA')
    .description('write to DELTA how to turn the file SIG describes into NEW')
    .argument('<sig>', 'signature of the basis, or - for stdin')
    .argument('<new>', 'new file, or - for stdin')
    .argument('<delta>', 'delta to write, or - for stdout')
    .action(async (sigPath: string, newPath: string, deltaPath: string, options: OutputOptions) => {
      onlyOneStdin(sigPath, newPath);
      const signature = await decodeSignature(input(sigPath, true));
      const stats = newDeltaStats();
      await output(deltaPath, encodeDelta(signature, input(newPath, true), stats), options);
      report(
        options,
        `delta: ${stats.fileLength} bytes, ${stats.copiedBytes} copied from the basis, ${stats.literalBytes} literal` +
          (stats.gaveUp ? ' (gave up matching: too many false weak-hash matches)' : ''),
      );
    });

  outputOptions(rdiff.command('patch'), 'OUT')
    .description('rebuild NEW from OLD and DELTA into OUT; OUT is written only if the result verifies')
    .argument('<old>', 'the basis the signature was made from (a file)')
    .argument('<delta>', 'delta, or - for stdin')
    .argument('<out>', 'file to write, or - for stdout')
    .action(async (oldPath: string, deltaPath: string, outPath: string, options: OutputOptions) => {
      if (oldPath === STDIO) throw new CliError('patch needs the basis as a file it can seek in, not stdin', EXIT_USAGE);
      await fileLength(oldPath);
      const basis = await openBasis(oldPath);
      const stats = newPatchStats();
      try {
        await output(outPath, applyDelta(basis, input(deltaPath), { stats }), options);
      } catch (error) {
        if (error instanceof VerificationError) {
          const kept = outPath === STDIO ? 'the output written so far is wrong' : `${printable(outPath)} was not written`;
          throw new CliError(
            `${error.message}: ${kept}. The basis is not the file the signature was made from, or truncated block ` +
              'hashes collided: make the signature again with --sum-size 16',
          );
        }
        throw error;
      } finally {
        await basis.close();
      }
      report(options, `patch: ${stats.fileLength} bytes, ${stats.copiedBytes} copied from the basis, ${stats.literalBytes} literal`);
    });
}
