import type { Command } from 'commander';
import { openLocalFolder } from '../folder/local-folder.js';
import type { ScanReport } from '../folder/report.js';
import { favourMemory } from './memory-mode.js';
import { formatBytes } from '../units.js';
import { Progress } from './progress.js';
import { printable } from './errors.js';

/** Exit code of a scan that finished but could not read some paths (they keep their records). */
export const EXIT_SCAN_ERRORS = 3;
/** Paths listed per kind of change in the human-readable report. */
const LISTED_PATHS = 20;

function files(count: number): string {
  return `${count} ${count === 1 ? 'file' : 'files'}`;
}

function listPaths(title: string, paths: readonly string[], total: number): string[] {
  if (total === 0) return [];
  const lines = paths.slice(0, LISTED_PATHS).map((path) => `    ${printable(path)}`);
  if (total > lines.length) lines.push(`    ... and ${total - lines.length} more`);
  return [`  ${title}:`, ...lines];
}

/** The report for people: what changed, in files and bytes, and how long it took. */
export function formatReport(root: string, report: ScanReport): string {
  const { counts, bytes } = report;
  const changed = counts.added + counts.modified + counts.deleted + counts.moved;
  const lines = [
    `Scanned ${printable(root)} in ${(report.durationMs / 1000).toFixed(2)} s: ` +
      `${files(report.filesHashed)} hashed (${formatBytes(report.bytesHashed)}), ${counts.unchanged} unchanged.`,
  ];
  if (changed === 0 && counts.metadataUpdated === 0) lines.push('No changes since the last scan.');
  else {
    lines.push(
      `  added     ${files(counts.added)}, ${formatBytes(bytes.added)}`,
      `  modified  ${files(counts.modified)}, ${formatBytes(bytes.modified)}`,
      `  deleted   ${files(counts.deleted)}, ${formatBytes(bytes.deleted)}`,
      `  moved     ${files(counts.moved)}, ${formatBytes(bytes.moved)}`,
    );
    if (counts.metadataUpdated > 0) lines.push(`  touched   ${files(counts.metadataUpdated)} (same content, version kept)`);
    lines.push(
      ...listPaths('added', report.added, counts.added),
      ...listPaths('modified', report.modified, counts.modified),
      ...listPaths('deleted', report.deleted, counts.deleted),
      ...listPaths(
        'moved',
        report.moved.map((m) => `${m.from} -> ${m.to}`),
        counts.moved,
      ),
    );
  }
  return `${lines.join('\n')}\n`;
}

function formatErrors(report: ScanReport): string {
  const lines = report.errors.map((e) => `mesh: ${printable(e.path)}: ${printable(e.message)}`);
  if (report.counts.errors > lines.length) lines.push(`mesh: ... and ${report.counts.errors - lines.length} more`);
  return `${lines.join('\n')}\n`;
}

/** `mesh scan <dir>`: index a folder without joining any mesh, and say what changed. */
export function registerScan(program: Command): void {
  program
    .command('scan')
    .description('index a folder without joining a mesh, and print what changed since the last scan')
    .argument('<dir>', 'the folder')
    .option('--json', 'print the report as JSON')
    .option('--full', 'rehash every file, even those whose size and time are unchanged (for disks that lie about times)')
    .action(async (dir: string, options: { json?: boolean; full?: boolean }) => {
      const progress = new Progress('scanning');
      const folder = await openLocalFolder(dir, {
        onProgress: (p) => {
          // Hashing is what grows the heap; the walk before it runs faster without the memory mode.
          if (p.phase === 'hashing' && p.filesToHash > 0) favourMemory();
          progress.update({ files: p.filesHashed, totalFiles: p.filesToHash, bytes: p.bytesHashed, totalBytes: p.bytesToHash });
        },
      });
      let report: ScanReport;
      try {
        report = await folder.scanner.scan({ full: options.full === true });
      } finally {
        progress.stop();
        await folder.close();
      }
      process.stdout.write(options.json === true ? `${JSON.stringify({ root: folder.root, ...report }, null, 2)}\n` : formatReport(folder.root, report));
      if (report.counts.errors > 0) {
        process.stderr.write(formatErrors(report));
        process.exitCode = EXIT_SCAN_ERRORS;
      }
    });
}
