// Mesh nodes on a LAN of network namespaces (test/netns.ts), each a child process: members of one
// mesh find each other by mDNS and connect once per pair, a member that does not answer mDNS still
// gets connected, and a node with another key neither sees nor reaches anyone. One LAN holds all
// of them, started at once: most of the time is node start-up, which they share.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { initFolder } from '../src/folder/folder-root.js';
import { generateMeshKey, loadPeerKey } from '../src/node/keys.js';
import { createLan, netnsUnavailable, type Lan } from './netns.js';
import { sleep, startNode, type NodeProcess } from './network-helpers.js';

const skip = await netnsUnavailable();
/** Bound on discovery plus connection once the nodes run (measured: 0.1-0.3 s, 0.5 s via the grace period). */
const CONNECT_MS = 10_000;
/** How long the node of another mesh is watched for a connection that must never happen. */
const NEVER_MS = 3_000;
/** The first member listens on a fixed port, so the outsider can dial it from the start. */
const FIRST_MEMBER_PORT = 4001;

describe('mDNS on a LAN of network namespaces', { skip }, () => {
  let lan: Lan;
  /** Two members that answer mDNS, then the quiet one (the highest peer id, it does not answer). */
  let members: NodeProcess[];
  let memberIds: string[];
  let quiet: NodeProcess;
  let outsider: NodeProcess;
  let outsiderId: string;
  let outsiderStartedAt: number;
  // Registered here, not inside before(): the LAN and its nodes serve every test of the suite.
  const cleanups: (() => Promise<void>)[] = [];
  const scope = { after: (fn: () => Promise<void>) => void cleanups.push(fn) };
  after(async () => {
    for (const cleanup of cleanups) await cleanup();
  });

  before(async () => {
    lan = await createLan(scope, 4);
    const key = generateMeshKey();
    // Identities made here, so the quiet member can be given the highest peer id.
    const states = await mkdtemp(join(tmpdir(), 'mesh-mdns-'));
    scope.after(() => rm(states, { recursive: true, force: true }));
    const identities = await Promise.all(
      [0, 1, 2].map(async (i) => {
        const root = join(states, String(i));
        await mkdir(root);
        const state = await initFolder(root);
        return { state, peerId: (await loadPeerKey(state)).publicKey.toString() };
      }),
    );
    identities.sort((a, b) => (a.peerId < b.peerId ? -1 : 1));
    memberIds = identities.map((i) => i.peerId);
    members = identities.map(({ state }, i) => {
      const name = i === 2 ? 'quiet member' : `member ${i + 1}`;
      const args = ['--state', state, ...(i === 0 ? ['--port', String(FIRST_MEMBER_PORT)] : []), ...(i === 2 ? ['--no-announce', '--grace', '300'] : [])];
      return startNode(scope, { lan, host: i, key, name, args });
    });
    quiet = members[2]!;
    const firstMember = `/ip4/${lan.hosts[0].address}/tcp/${FIRST_MEMBER_PORT}`;
    outsider = startNode(scope, { lan, host: 3, key: generateMeshKey(), name: 'outsider', args: ['--peer', firstMember, '--redial-min', '500'] });
    outsiderId = (await outsider.started()).peerId;
    outsiderStartedAt = Date.now();
    await Promise.all(members.map((node) => node.started()));
  });

  it('members discover each other and connect over the LAN, one connection per pair', async () => {
    await Promise.all(members.flatMap((node, i) => memberIds.filter((_, j) => j !== i).map((id) => node.connectedTo(id, CONNECT_MS))));
    const lanPrefix = `/ip4/${lan.subnet.replace(/0\/24$/, '')}`;
    for (const [i, node] of members.entries()) {
      const connects = node.eventsNamed('peer:connect');
      assert.deepEqual(connects.map((e) => e.peerId).sort(), memberIds.filter((_, j) => j !== i).sort(), `${node.name}: one peer:connect per peer`);
      // mDNS also announces 127.0.0.1, which on another host is not the peer: never used.
      for (const event of connects) assert.ok(String(event.remoteAddress).startsWith(lanPrefix), `${String(event.remoteAddress)} is on the LAN`);
    }
    for (const [i, node] of members.entries()) {
      const { connections } = await node.status();
      assert.deepEqual(
        connections.map((c) => c.peerId).sort(),
        memberIds.filter((_, j) => j !== i).sort(),
        `${node.name} holds exactly one connection to each other member: ${JSON.stringify(connections)}`,
      );
    }
  });

  it('a member nobody discovers (it does not answer mDNS) is connected: with the higher id, it dials after its grace period', async () => {
    const quietId = memberIds[2];
    await Promise.all(memberIds.slice(0, 2).map((id) => quiet.connectedTo(id, CONNECT_MS)));
    for (const event of quiet.eventsNamed('peer:connect')) assert.equal(event.direction, 'outbound');
    for (const node of members.slice(0, 2)) {
      assert.ok(!node.events.some((e) => e.event === 'peer:discovery' && e.peerId === quietId), `${node.name} never discovered the quiet member`);
      assert.equal((await node.connectedTo(quietId, CONNECT_MS)).direction, 'inbound');
    }
  });

  it('the node with another key is never discovered and never connects, even dialling a member itself', async () => {
    // Its dial starts at once and fails (a reset, or a handshake timeout: pnet garbles what noise
    // reads, so a wrong key can look like a peer that never answers); it keeps redialling.
    await sleep(Math.max(0, outsiderStartedAt + NEVER_MS - Date.now()));
    for (const node of [...members, outsider]) {
      assert.ok(!node.events.some((e) => e.event === 'peer:connect' && (node === outsider || e.peerId === outsiderId)), `${node.name}: no connection across meshes`);
      assert.ok(!node.events.some((e) => e.event === 'peer:discovery' && (node === outsider || e.peerId === outsiderId)), `${node.name}: no discovery across meshes`);
    }
    // Nothing about the outsider reached the dialled member: the handshake failed before identify.
    const { connections, knownPeers } = await members[0].status();
    assert.ok(!connections.some((c) => c.peerId === outsiderId));
    assert.ok(!knownPeers.includes(outsiderId), `the member knows only ${knownPeers.join(' ')}`);
    assert.deepEqual((await outsider.status()).connections, []);
  });
});

