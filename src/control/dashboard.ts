/**
 * The dashboard `mesh join --gui` serves: a page, its style and its script, all from the node (no
 * inline script and no other origin, so a strict Content-Security-Policy holds), that asks
 * /v1/status every second and shows the same as `mesh status`. Every value is set with
 * textContent: a file name cannot inject markup.
 */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>mesh</title>
<link rel="stylesheet" href="/dashboard.css">
</head>
<body>
<h1>mesh <span id="state" class="state offline">connecting</span></h1>
<div class="muted">node <code id="node-id"></code>, up <span id="uptime"></span></div>
<div class="muted" id="addresses"></div>
<h2>Folder</h2>
<div><code id="root"></code></div>
<div id="folder"></div>
<h2>Peers (<span id="peer-count">0</span>)</h2>
<table><thead><tr><th>Peer</th><th>Address</th><th>Connected since</th><th>In</th><th>Out</th></tr></thead><tbody id="peers"></tbody></table>
<h2>Transfers (<span id="transfer-count">0</span>)</h2>
<table><thead><tr><th>File</th><th>From</th><th>Received</th></tr></thead><tbody id="transfers"></tbody></table>
<h2>Conflicts (<span id="conflict-count">0</span>)</h2>
<table><thead><tr><th>Conflict copy</th><th>Of</th><th>Size</th></tr></thead><tbody id="conflicts"></tbody></table>
<script src="/dashboard.js"></script>
</body>
</html>
`;

export const DASHBOARD_CSS = `  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
  h2 { font-size: 1rem; margin: 1.2rem 0 .4rem; }
  .muted { color: #666; }
  .state { display: inline-block; padding: .1rem .5rem; border-radius: .6rem; font-weight: 600; }
  .state.in-sync { background: #d8f3dc; color: #1b4332; }
  .state.syncing { background: #fff3bf; color: #5c4400; }
  .state.offline { background: #ffe3e3; color: #7a0000; }
  table { border-collapse: collapse; width: 100%; background: #fff; }
  th, td { text-align: left; padding: .3rem .5rem; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
  code { font-size: 12px; word-break: break-all; }
  progress { width: 10rem; }
`;

export const DASHBOARD_JS = `const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
function bytes(n) {
  let unit = 0;
  while (n >= 1024 && unit < UNITS.length - 1) { n /= 1024; unit++; }
  return (unit === 0 ? String(n) : n.toFixed(1)) + ' ' + UNITS[unit];
}
function ago(iso) {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return h > 0 ? h + 'h ' + m + 'm' : m > 0 ? m + 'm ' + (s % 60) + 's' : s + 's';
}
function text(id, value) { document.getElementById(id).textContent = value; }
function rows(id, items, cells) {
  const body = document.getElementById(id);
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement('tr');
    for (const cell of cells(item)) {
      const td = document.createElement('td');
      if (cell instanceof Node) td.append(cell); else td.textContent = cell;
      tr.append(td);
    }
    return tr;
  }));
}
function progress(value, max) {
  const bar = document.createElement('progress');
  bar.max = Math.max(1, max);
  bar.value = Math.min(value, bar.max);
  return bar;
}
async function refresh() {
  const state = document.getElementById('state');
  try {
    const response = await fetch('/v1/status', { cache: 'no-store' });
    if (!response.ok) throw new Error('HTTP ' + response.status);
    const s = await response.json();
    const f = s.folder;
    state.className = 'state ' + (f.inSync ? 'in-sync' : 'syncing');
    state.textContent = f.inSync ? 'in sync' : 'syncing';
    text('node-id', s.node.id);
    text('uptime', ago(s.node.startedAt));
    text('addresses', 'listening on ' + s.node.addresses.join(', '));
    text('root', f.root);
    text('folder', f.files + ' files, ' + f.directories + ' folders, ' + f.symlinks + ' symlinks, ' + bytes(f.bytes) +
      (f.inSync ? '' : '; needs ' + f.needFiles + ' changes (' + bytes(f.needBytes) + ')') +
      (f.receivingIndexes > 0 ? '; reading the index of ' + f.receivingIndexes + ' peer' + (f.receivingIndexes === 1 ? '' : 's') : ''));
    text('peer-count', s.peers.length);
    rows('peers', s.peers, (p) => [p.id, p.address, ago(p.connectedSince) + ' ago', bytes(p.bytesIn), bytes(p.bytesOut)]);
    text('transfer-count', s.transfers.length);
    rows('transfers', s.transfers, (t) => [t.path, t.peer.slice(-8), progress(t.bytes, t.size)]);
    text('conflict-count', s.conflicts.length);
    rows('conflicts', s.conflicts, (c) => [c.path, c.original, bytes(c.size)]);
  } catch (error) {
    state.className = 'state offline';
    state.textContent = 'node not answering';
  }
}
refresh();
setInterval(refresh, 1000);
`;
