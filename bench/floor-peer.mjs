// One side of bench:floor's bare transfer, plain JavaScript so that no loader runs beside it:
//   node bench/floor-peer.mjs receive PORT FILE      takes one connection, writes what arrives, fsyncs
//   node bench/floor-peer.mjs send HOST PORT FILE    reads FILE and sends it
// Prints one JSON line: CPU seconds (user + system) and wall seconds from the connection to the end.
import { closeSync, createReadStream, fsyncSync, openSync, writeSync } from 'node:fs';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import process from 'node:process';

/** What mesh reads a file in; the socket gets the same pieces. */
const READ_BYTES = 1 << 20;

const [role, ...args] = process.argv.slice(2);

function report(started, cpu, bytes) {
  const used = process.cpuUsage(cpu);
  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`${JSON.stringify({ bytes, cpuSeconds: (used.user + used.system) / 1e6, seconds })}\n`);
}

if (role === 'receive') {
  const [port, file] = args;
  const server = net.createServer((socket) => {
    const started = performance.now();
    const cpu = process.cpuUsage();
    const fd = openSync(file, 'w');
    let bytes = 0;
    socket.on('data', (data) => {
      writeSync(fd, data);
      bytes += data.length;
    });
    socket.on('end', () => {
      fsyncSync(fd);
      closeSync(fd);
      report(started, cpu, bytes);
      server.close();
    });
  });
  server.listen(Number(port), '0.0.0.0', () => process.stdout.write('listening\n'));
} else if (role === 'send') {
  const [host, port, file] = args;
  const started = performance.now();
  const cpu = process.cpuUsage();
  const socket = net.connect(Number(port), host, () => createReadStream(file, { highWaterMark: READ_BYTES }).pipe(socket));
  socket.on('close', () => report(started, cpu, socket.bytesWritten));
} else {
  process.stderr.write('usage: floor-peer.mjs receive PORT FILE | send HOST PORT FILE\n');
  process.exitCode = 1;
}
