#!/usr/bin/env node
// The `mesh` command. The polyfill comes first: libp2p needs it on Node 20.
import '../polyfills.js';
import { run } from './program.js';

process.exitCode = await run(process.argv);
