/** Where bench:compare keeps each node's log, and the end of a log for an error message. */
import path from 'node:path';
import { ROOT } from '../mesh-cli.js';

export const OUT_DIR = path.join(ROOT, 'bench-out');
const LAST_LINES = 12;

/** bench-out/compare-TOOL-Nnodes-K.log */
export function logPath(tool: string, nodes: number, index: number): string {
  return path.join(OUT_DIR, `compare-${tool}-${nodes}nodes-${index}.log`);
}

export function lastLines(text: string): string {
  return text.trimEnd().split('\n').slice(-LAST_LINES).join('\n');
}
