import { setFlagsFromString } from 'node:v8';

/**
 * V8 compiles a function with TurboFan once it has run enough (its interrupt budget, in bytecodes
 * executed). A node's work comes in short bursts through many different functions: receiving
 * 2,000 new files, B compiled ~280 of them (1.5 s of compiler time by --trace-opt) in a step of
 * 2.7 CPU-s (bench:mesh), most of them to run a few thousand times more. At four times V8's
 * default budget (67,584), 140 compilations in B's whole run instead of 350, and B's CPU in that
 * step 20% lower (the 1% edit's too); the hot loops of a long transfer still get there in
 * milliseconds (the 256 MiB file took as long).
 */
export const NODE_INTERRUPT_BUDGET = 4 * 67_584;

/**
 * The V8 versions that tier up by interrupt budget: Node 20's 11.3. Later ones (Node 22, 24) count
 * invocations instead, put Maglev before TurboFan, and reject the flag (with a line on stderr):
 * they keep their defaults, which this machine's benchmarks have not measured.
 */
const BUDGET_V8_MAJOR = 11;

/** For a long-running node: tier functions up only once they keep running (a V8 heuristic; read at run time). */
export function tierUpLater(v8Version = process.versions.v8): void {
  if (Number.parseInt(v8Version, 10) !== BUDGET_V8_MAJOR) return;
  setFlagsFromString(`--interrupt-budget=${NODE_INTERRUPT_BUDGET}`);
}
