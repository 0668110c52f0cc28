#!/usr/bin/env node
// The `mesh` command. The polyfill comes first: libp2p needs it on Node 20.
import '../polyfills.js';
import { run } from './program.js';

// A reader that went away (`mesh scan --json | head`) ends the output, as for any Unix tool: no
// stack trace. The command's work (the index) is committed as it goes, so nothing is lost.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await run(process.argv);
