import { Command, CommanderError } from 'commander';
import { describeError, EXIT_USAGE } from './errors.js';
import { registerJoin } from './join.js';
import { registerKey, registerKeygen } from './keygen.js';
import { registerRdiff } from './rdiff.js';
import { registerScan } from './scan.js';
import { registerStatus } from './status.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('mesh')
    .description('peer-to-peer folder sync with no central server')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (text, write) => write(`mesh: ${text.replace(/^error: /, '')}`) })
    .exitOverride();
  registerScan(program);
  registerRdiff(program);
  registerKeygen(program);
  registerKey(program);
  registerJoin(program);
  registerStatus(program);
  for (const command of program.commands) command.exitOverride();
  return program;
}

/** Runs the command line and returns the exit code; errors become one line on stderr. */
export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Commander has already printed its message (or the help / version text).
      return error.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    const { message, exitCode } = describeError(error);
    process.stderr.write(`mesh: ${message}\n`);
    if (process.env.MESH_DEBUG === '1' && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return exitCode;
  }
}
