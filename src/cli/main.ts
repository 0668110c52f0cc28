#!/usr/bin/env node
// The `mesh` command. The polyfill comes first: libp2p needs it on Node 20.
import '../polyfills.js';
import { setFlagsFromString } from 'node:v8';
import { run } from './program.js';

// GC heuristics only (no object layout depends on it): collect the old generation before it grows
// to several times what is live. A scan of 100,000 files promotes its per-file garbage faster than
// the default growth collects it (peak RSS ~190 MiB instead of ~130 MiB); the cost is a few more
// major collections. Set before any command runs, as a flag should be.
setFlagsFromString('--optimize-for-size');

process.exitCode = await run(process.argv);
