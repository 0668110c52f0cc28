// `mesh join --gui` serves a dashboard; headless Chromium (Debian's, driven by playwright-core)
// reads it as a user would. A real node on loopback (no mDNS: the host network is no place for it).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { access, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { JoinProcess, SOURCE_CLI, tempFolder } from './join-helpers.js';

const KEY = `mesh1${'ef'.repeat(32)}`;
const CHROMIUM = '/usr/bin/chromium';
// As root in a container, with no network beyond this machine (see the machine notes).
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function joinWithGui(t: TestContext, dir: string, gui: string): JoinProcess {
  const env = { ...process.env, MESH_KEY: KEY };
  const run = new JoinProcess(spawn(process.execPath, [...SOURCE_CLI, 'join', dir, '--no-mdns', '--port', '0', '--gui', gui], { stdio: 'pipe', env }));
  t.after(() => run.stop());
  return run;
}

/** A GET with a Host header of our choosing (a browser would not let a page set it). */
function statusCode(url: string, host: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (response) => {
      response.resume();
      resolve(response.statusCode);
    });
    req.on('error', reject);
    req.end();
  });
}

const missing = await access(CHROMIUM).then(
  () => undefined,
  () => `${CHROMIUM} is not installed (apt-get install chromium)`,
);

describe('the dashboard (mesh join --gui)', { skip: missing }, () => {
  let browser: Browser;
  before(async () => {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
  });
  after(() => browser.close());

  it('shows the node, the folder in sync and its conflict copies, and follows changes live', async (t) => {
    const dir = await tempFolder(t, 'gui');
    await writeFile(join(dir, 'notes.txt'), 'hello');
    // A hostile name: it must show as text, never as markup.
    await writeFile(join(dir, '<img src=x onerror=alert(1)>.sync-conflict-20261121-101500-abcdef0.txt'), 'x');
    const node = joinWithGui(t, dir, '127.0.0.1:0');
    await node.waitForOutput(/dashboard: (http:\S+)/, 30_000);
    const url = /dashboard: (http:\S+)/.exec(node.stdout)![1];
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/$/);

    const page = await browser.newPage();
    t.after(() => page.close());
    const dialogs: string[] = [];
    page.on('dialog', (dialog) => {
      dialogs.push(dialog.message());
      void dialog.dismiss();
    });
    await page.goto(url);
    await page.locator('#state', { hasText: 'in sync' }).waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('#node-id').textContent(), node.peerId);
    assert.match((await page.locator('#folder').textContent()) ?? '', /^2 files, 0 folders/);
    assert.equal(await page.locator('#conflict-count').textContent(), '1');
    const conflict = page.locator('#conflicts td').first();
    assert.equal(await conflict.textContent(), '<img src=x onerror=alert(1)>.sync-conflict-20261121-101500-abcdef0.txt');
    assert.equal(await page.locator('#conflicts img').count(), 0);

    await writeFile(join(dir, 'new.txt'), 'a change the dashboard must show without a reload');
    await page.locator('#folder', { hasText: /^3 files/ }).waitFor({ timeout: 30_000 });
    assert.deepEqual(dialogs, []);
  });

  it('answers only requests addressed to it (no DNS rebinding), and a network address is announced as such', async (t) => {
    const dir = await tempFolder(t, 'gui-host');
    const node = joinWithGui(t, dir, '0.0.0.0:0');
    await node.waitForOutput(/warning: the dashboard is reachable from the network/, 30_000);
    const port = /dashboard: http:\/\/0\.0\.0\.0:(\d+)\//.exec(node.stdout)?.[1];
    assert.ok(port !== undefined, node.describe());
    const url = `http://127.0.0.1:${port}/v1/status`;
    assert.equal(await statusCode(url, `127.0.0.1:${port}`), 200);
    assert.equal(await statusCode(url, `localhost:${port}`), 200);
    assert.equal(await statusCode(url, `evil.example:${port}`), 421);
  });
});
