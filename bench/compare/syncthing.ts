/**
 * Syncthing in bench:compare: one `syncthing serve` per host, configured as a user would through
 * config.xml (before the first start) and the REST API (devices, the folder), reached on a unix
 * socket so the bench needs no route into the namespaces. Discovery, relays, NAT and usage
 * reporting are off; devices know each other's static address tcp://IP:22000.
 */
import { execFile, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { stopChild, type Lan } from '../../test/netns.js';
import type { Cluster, Tool } from './cluster.js';
import { lastLines, logPath } from './logs.js';

const execFileAsync = promisify(execFile);

const PORT = 22000;
const API_KEY = 'mesh-bench-compare';
const FOLDER_ID = 'bench';
const START_TIMEOUT_MS = 60_000;
const POLL_MS = 100;
/** Syncthing's default watcher delay, in seconds (what users get). */
const DEFAULT_WATCH_DELAY_S = 10;
const TUNED_WATCH_DELAY_S = 1;

interface Variant {
  name: string;
  watchDelayS: number;
  /** Syncthing lowers its own CPU and I/O priority by default (setLowPriority). */
  lowPriority: boolean;
}

const VARIANTS = {
  default: { name: 'syncthing', watchDelayS: DEFAULT_WATCH_DELAY_S, lowPriority: true },
  tuned: { name: 'syncthing-tuned', watchDelayS: TUNED_WATCH_DELAY_S, lowPriority: false },
} satisfies Record<string, Variant>;

/** A REST call on the GUI's unix socket; resolves with the parsed JSON body (or undefined when empty). */
function rest(socketPath: string, method: string, route: string, body?: unknown): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({ socketPath, method, path: route, headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if ((res.statusCode ?? 500) >= 300) reject(new Error(`syncthing ${method} ${route}: ${res.statusCode} ${text.trim()}`));
        else resolve(text.trim() === '' ? undefined : JSON.parse(text));
      });
    });
    req.on('error', reject);
    req.end(payload);
  });
}

/** Sets `<tag>value</tag>` in config.xml's options (the tags are unique there). */
function setOption(xml: string, tag: string, value: string): string {
  const pattern = new RegExp(`<${tag}>[^<]*</${tag}>`);
  if (!pattern.test(xml)) throw new Error(`syncthing config.xml has no <${tag}>`);
  return xml.replace(pattern, `<${tag}>${value}</${tag}>`);
}

interface Instance {
  home: string;
  socket: string;
  deviceId: string;
  child?: ChildProcess;
  log: string;
}

async function generate(home: string, address: string, variant: Variant): Promise<Instance> {
  const { stdout, stderr } = await execFileAsync('syncthing', ['generate', `--home=${home}`, '--no-default-folder']);
  const deviceId = /Device ID: ([A-Z0-9-]{63})/.exec(stdout + stderr)?.[1];
  if (deviceId === undefined) throw new Error(`syncthing generate printed no device ID:\n${stdout}${stderr}`);
  const configFile = path.join(home, 'config.xml');
  let xml = await readFile(configFile, 'utf8');
  const options: [string, string][] = [
    ['listenAddress', `tcp://${address}:${PORT}`],
    ['globalAnnounceEnabled', 'false'],
    ['localAnnounceEnabled', 'false'],
    ['relaysEnabled', 'false'],
    ['natEnabled', 'false'],
    ['startBrowser', 'false'],
    ['urAccepted', '-1'],
    ['autoUpgradeIntervalH', '0'],
    ['crashReportingEnabled', 'false'],
    ['setLowPriority', String(variant.lowPriority)],
  ];
  for (const [tag, value] of options) xml = setOption(xml, tag, value);
  await writeFile(configFile, xml);
  return { home, socket: path.join(home, 'gui.sock'), deviceId, log: '' };
}

async function waitFor(what: string, instance: Instance, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (instance.child?.exitCode !== null) throw new Error(`syncthing exited before ${what}\n${lastLines(instance.log)}`);
    if (Date.now() > deadline) throw new Error(`syncthing: no ${what} within ${START_TIMEOUT_MS} ms\n${lastLines(instance.log)}`);
    await sleep(POLL_MS);
  }
}

function syncthingTool(variant: Variant): Tool {
  return {
    name: variant.name,
    twoWay: true,
    setup:
      `syncthing serve (Debian's 1.19), listen tcp://IP:${PORT} only, global and local discovery, relays, NAT, usage reports and upgrades off, ` +
      `the other devices added by ID with their static address, one send-receive folder with the watcher on, fsWatcherDelayS=${variant.watchDelayS}, ` +
      `setLowPriority=${variant.lowPriority}, everything else default (rescanIntervalS 3600, 128 KiB blocks, fsync on)`,
    async start(scope, lan: Lan, workDir, count): Promise<Cluster> {
      const hosts = lan.hosts.slice(0, count);
      const dirs = hosts.map((host) => path.join(workDir, `${variant.name}-${host.index}`, 'folder'));
      const instances: Instance[] = [];
      for (const [i, host] of hosts.entries()) {
        const home = path.join(workDir, `${variant.name}-${i}`, 'home');
        await mkdir(dirs[i], { recursive: true });
        await mkdir(home, { recursive: true });
        instances.push(await generate(home, host.address, variant));
      }
      for (const [i, instance] of instances.entries()) {
        const log = createWriteStream(logPath(variant.name, count, i));
        const child = lan.spawn(i, 'syncthing', [
          'serve',
          `--home=${instance.home}`,
          '--no-browser',
          '--no-restart',
          '--no-upgrade',
          '--no-default-folder',
          `--gui-address=unix://${instance.socket}`,
          `--gui-apikey=${API_KEY}`,
        ], { stdio: ['ignore', 'pipe', 'pipe'] });
        instance.child = child;
        for (const stream of [child.stdout!, child.stderr!]) {
          stream.on('data', (chunk: Buffer) => {
            instance.log += chunk.toString('utf8');
            log.write(chunk);
          });
        }
        scope.after(async () => {
          await stopChild(child);
          log.end();
        });
      }
      for (const instance of instances) await waitFor('REST API', instance, async () => (await rest(instance.socket, 'GET', '/rest/system/ping')) !== undefined);
      // Each device learns the others, then the folder shared with all of them.
      for (const [i, instance] of instances.entries()) {
        for (const [j, other] of instances.entries()) {
          if (i === j) continue;
          await rest(instance.socket, 'POST', '/rest/config/devices', { deviceID: other.deviceId, name: `node${j}`, addresses: [`tcp://${hosts[j].address}:${PORT}`] });
        }
        await rest(instance.socket, 'POST', '/rest/config/folders', {
          id: FOLDER_ID,
          label: FOLDER_ID,
          path: dirs[i],
          type: 'sendreceive',
          devices: instances.map((device) => ({ deviceID: device.deviceId })),
          fsWatcherEnabled: true,
          fsWatcherDelayS: variant.watchDelayS,
        });
      }
      for (const instance of instances) {
        await waitFor('connections to every other device', instance, async () => {
          const { connections } = (await rest(instance.socket, 'GET', '/rest/system/connections')) as { connections: Record<string, { connected: boolean }> };
          return instances.every((other) => other === instance || connections[other.deviceId]?.connected === true);
        });
        await waitFor('an idle folder', instance, async () => {
          const status = (await rest(instance.socket, 'GET', `/rest/db/status?folder=${FOLDER_ID}`)) as { state: string };
          return status.state === 'idle';
        });
      }
      return {
        tool: variant.name,
        lan,
        dirs,
        changed: async () => undefined,
        failure() {
          const index = instances.findIndex((instance) => instance.child?.exitCode !== null);
          return index < 0 ? undefined : `syncthing node ${index} exited\n${lastLines(instances[index].log)}`;
        },
        extraCpuSeconds: () => 0,
      };
    },
  };
}

export const syncthingDefault = syncthingTool(VARIANTS.default);
export const syncthingTuned = syncthingTool(VARIANTS.tuned);
