import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse, TomlError } from 'smol-toml';
import { STATE_DIRECTORY } from '../folder/folder-root.js';
import { NodeError } from './errors.js';

/** The settings file of a folder, in its state directory (never synced). */
export const CONFIG_FILE = 'config';
/** Largest config file read: a few lines of settings. */
const MAX_CONFIG_BYTES = 64 * 1024;
/** Most static peers a folder may list. */
export const MAX_CONFIGURED_PEERS = 256;
/** Files pulled at once unless set: enough to overlap round trips, few enough for a Pi's disk. */
export const DEFAULT_PULL_CONCURRENCY = 4;
/** Most files pulled at once. */
export const MAX_PULL_CONCURRENCY = 64;
/** Longest quiet time before a change is scanned (longer is no longer "live"). */
export const MAX_WATCH_DELAY_SETTING_MS = 60_000;
/** Highest rate limit (KiB/s): about 4 GB/s, beyond any link. */
const MAX_RATE_KIBPS = 4 * 1024 * 1024;

/**
 * The settings of `mesh join` for one folder, from `<folder>/.mesh/config` (TOML, see README);
 * a command-line flag given replaces the setting. Absent: the default.
 */
export interface FolderConfig {
  /** TCP port to listen on (0: any free port). */
  readonly port?: number;
  /** Static peers (multiaddrs), dialled and redialled. */
  readonly peers?: readonly string[];
  /** Look for peers on the LAN by mDNS. */
  readonly mdns?: boolean;
  /** Files pulled at once. */
  readonly pullConcurrency?: number;
  /** Quiet time after a change before it is scanned (ms). */
  readonly watchDelayMs?: number;
  /** Upload and download limits in KiB/s (0: none). */
  readonly maxSendKiBps?: number;
  readonly maxRecvKiBps?: number;
}

/** `.mesh/config` cannot be read or says something mesh does not accept: one line, naming the setting. */
export class ConfigError extends NodeError {
  override name = 'ConfigError';
}

type Setting = keyof FolderConfig;

/** The file's names for the settings (kebab-case, as the flags). */
const SETTINGS: Readonly<Record<string, Setting>> = {
  port: 'port',
  peers: 'peers',
  mdns: 'mdns',
  'pull-concurrency': 'pullConcurrency',
  'watch-delay-ms': 'watchDelayMs',
  'max-send-kibps': 'maxSendKiBps',
  'max-recv-kibps': 'maxRecvKiBps',
};

function integer(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(`${name} must be a whole number from ${min} to ${max}, not ${JSON.stringify(value)}`);
  }
  return value;
}

function checked(name: string, setting: Setting, value: unknown): FolderConfig[Setting] {
  switch (setting) {
    case 'port':
      return integer(name, value, 0, 65535);
    case 'pullConcurrency':
      return integer(name, value, 1, MAX_PULL_CONCURRENCY);
    case 'watchDelayMs':
      return integer(name, value, 0, MAX_WATCH_DELAY_SETTING_MS);
    case 'maxSendKiBps':
    case 'maxRecvKiBps':
      return integer(name, value, 0, MAX_RATE_KIBPS);
    case 'mdns':
      if (typeof value !== 'boolean') throw new ConfigError(`${name} must be true or false, not ${JSON.stringify(value)}`);
      return value;
    case 'peers':
      if (!Array.isArray(value) || value.length > MAX_CONFIGURED_PEERS || !value.every((peer) => typeof peer === 'string')) {
        throw new ConfigError(`${name} must be a list of at most ${MAX_CONFIGURED_PEERS} addresses in quotes, like ["/ip4/192.168.1.20/tcp/41235"]`);
      }
      return value;
  }
}

/** Reads `<root>/.mesh/config`; no file means no settings. Throws ConfigError. */
export async function readFolderConfig(root: string): Promise<FolderConfig> {
  const path = join(root, STATE_DIRECTORY, CONFIG_FILE);
  let text: string;
  try {
    const bytes = await readFile(path);
    if (bytes.length > MAX_CONFIG_BYTES) throw new ConfigError(`${path} is larger than ${MAX_CONFIG_BYTES} bytes; it holds a few settings`);
    text = bytes.toString('utf8');
  } catch (error) {
    if (error instanceof ConfigError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read ${path}: ${(error as Error).message}`);
  }
  return parseFolderConfig(text, path);
}

/** The settings in `text` (TOML); `where` names the file in messages. Throws ConfigError. */
export function parseFolderConfig(text: string, where: string): FolderConfig {
  let table: Record<string, unknown>;
  try {
    table = parse(text);
  } catch (error) {
    const detail = error instanceof TomlError ? `line ${error.line}: ${error.message.split('\n')[0]}` : String(error);
    throw new ConfigError(`${where} is not valid TOML (${detail})`);
  }
  const config: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(table)) {
    const setting = Object.hasOwn(SETTINGS, name) ? SETTINGS[name] : undefined;
    if (setting === undefined) throw new ConfigError(`${where}: unknown setting "${name}" (known: ${Object.keys(SETTINGS).join(', ')})`);
    config[setting] = checked(`${where}: ${name}`, setting, value);
  }
  return config;
}
