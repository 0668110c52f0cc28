/** bench:compare's table: one row per figure, one column per tool, then mesh's ratio to each other tool. */
import { LATENCY_EDITS, THREE_NODE_EDITS } from './scenarios.js';
import type { ToolResults } from './run-tool.js';

/** How a figure compares: for 'lower' figures (seconds, bytes, MiB) the ratio is other / mesh, for 'higher' (MB/s) mesh / other; 'none': no ratio (a yes/no). */
type Better = 'lower' | 'higher' | 'none';

interface Row {
  label: string;
  better: Better;
  digits: number;
  value(r: ToolResults): number | string | undefined;
}

const MIB = 1024 * 1024;

function maxOf(values: number[] | undefined): number | undefined {
  return values === undefined || values.length === 0 ? undefined : Math.max(...values);
}

export function rows(fileBytes: number): Row[] {
  const mib = fileBytes / MIB;
  return [
    { label: `small edit latency p50 (s, ${LATENCY_EDITS} edits)`, better: 'lower', digits: 3, value: (r) => r.latency?.p50Seconds },
    { label: 'small edit latency max (s)', better: 'lower', digits: 3, value: (r) => r.latency?.maxSeconds },
    { label: 'small edit, wire bytes per edit', better: 'lower', digits: 0, value: (r) => r.latency?.wireBytesPerEdit },
    { label: '2,000 small files (s)', better: 'lower', digits: 2, value: (r) => r.small?.seconds },
    { label: '2,000 small files, wire bytes', better: 'lower', digits: 0, value: (r) => r.small?.wireBytes },
    { label: '2,000 small files, CPU s (all nodes)', better: 'lower', digits: 2, value: (r) => r.small?.cpuSeconds },
    { label: `new ${mib} MiB file (s)`, better: 'lower', digits: 2, value: (r) => r.large?.seconds },
    { label: `new ${mib} MiB file (MB/s)`, better: 'higher', digits: 0, value: (r) => r.large?.mbPerSecond },
    { label: `new ${mib} MiB file, wire bytes`, better: 'lower', digits: 0, value: (r) => r.large?.wireBytes },
    { label: `new ${mib} MiB file, CPU s (all nodes)`, better: 'lower', digits: 2, value: (r) => r.large?.cpuSeconds },
    { label: '1% edit (s)', better: 'lower', digits: 2, value: (r) => r.edit?.seconds },
    { label: '1% edit, wire bytes', better: 'lower', digits: 0, value: (r) => r.edit?.wireBytes },
    { label: '1% edit, wire / changed bytes', better: 'lower', digits: 2, value: (r) => r.edit?.wireRatio },
    { label: '1% edit, CPU s (all nodes)', better: 'lower', digits: 2, value: (r) => r.edit?.cpuSeconds },
    { label: 'rename into another folder (s)', better: 'lower', digits: 2, value: (r) => r.rename?.seconds },
    { label: 'rename, wire bytes', better: 'lower', digits: 0, value: (r) => r.rename?.wireBytes },
    { label: 'delete a folder of 300 files (s)', better: 'lower', digits: 2, value: (r) => r.deleteFolder?.seconds },
    { label: 'delete, wire bytes', better: 'lower', digits: 0, value: (r) => r.deleteFolder?.wireBytes },
    { label: 'concurrent edit: both versions kept on both nodes', better: 'none', digits: 0, value: (r) => (r.conflict === undefined ? undefined : r.conflict.bothKept ? 'yes' : 'NO') },
    { label: 'concurrent edit: s until both nodes have both', better: 'lower', digits: 2, value: (r) => r.conflict?.seconds },
    { label: `3 nodes: edit reaches both others, p50 (s, ${THREE_NODE_EDITS} edits)`, better: 'lower', digits: 3, value: (r) => r.threeNodes?.p50Seconds },
    { label: '3 nodes: max (s)', better: 'lower', digits: 3, value: (r) => r.threeNodes?.maxSeconds },
    { label: '3 nodes: wire bytes per edit', better: 'lower', digits: 0, value: (r) => r.threeNodes?.wireBytesPerEdit },
    { label: 'RSS per node at the end, highest (MiB)', better: 'lower', digits: 1, value: (r) => maxOf(r.memory?.map((m) => m.rssMiB)) },
    { label: 'peak RSS per node, highest (MiB)', better: 'lower', digits: 1, value: (r) => maxOf(r.memory?.map((m) => m.peakRssMiB)) },
  ];
}

function format(value: number | string | undefined, digits: number): string {
  if (value === undefined) return 'n/a';
  if (typeof value === 'string') return value;
  if (Number.isNaN(value)) return 'no';
  return value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

/** How many times better mesh is than `other` on this row (> 1: mesh better). */
function ratio(row: Row, mesh: number | string | undefined, other: number | string | undefined): number | undefined {
  if (row.better === 'none' || typeof mesh !== 'number' || typeof other !== 'number' || !Number.isFinite(mesh) || !Number.isFinite(other) || mesh <= 0 || other <= 0) return undefined;
  return row.better === 'lower' ? other / mesh : mesh / other;
}

export interface Table {
  header: string[];
  cells: string[][];
}

export function buildTable(results: readonly ToolResults[], fileBytes: number): Table {
  const mesh = results.find((r) => r.tool === 'mesh');
  const anchors = results.filter((r) => r.tool !== 'mesh');
  const header = ['', ...results.map((r) => r.tool), ...(mesh === undefined ? [] : anchors.map((r) => `mesh vs ${r.tool}`))];
  const cells = rows(fileBytes).map((row) => [
    row.label,
    ...results.map((r) => format(row.value(r), row.digits)),
    ...(mesh === undefined ? [] : anchors.map((r) => {
      const x = ratio(row, row.value(mesh), row.value(r));
      return x === undefined ? '' : `${x.toFixed(2)}x`;
    })),
  ]);
  return { header, cells };
}

/** A markdown table, padded so it also reads as plain text. */
export function markdown(table: Table): string {
  const all = [table.header, ...table.cells];
  const widths = table.header.map((_, i) => Math.max(...all.map((row) => (row[i] ?? '').length)));
  const line = (row: string[]): string => `| ${row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 2)}` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(table.header), rule, ...table.cells.map(line)].join('\n');
}
