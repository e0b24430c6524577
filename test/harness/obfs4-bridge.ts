/**
 * An obfs4 bridge joined to the harness's private Tor network, and a
 * firewall that keeps "the user's computer" away from every relay, so a
 * client that bootstraps anyway must have used the bridge (or a proxy).
 *
 *   const bridge = await startObfs4Bridge(network);   // bridge.line: "obfs4 10.99.0.45:5100 FP cert=… iat-mode=0"
 *   const block = await blockDirectRelayAccess(network);   // nft in the INTERNET namespace only
 *   ...
 *   await block.remove(); await bridge.stop();   // network.stop() removes both anyway
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { ipIn } from './netns.ts';
import { renderTorrc, type TorNodeSpec } from './tor-config.ts';
import { LOW_MEMORY_ENV, readFingerprint, startTor, type TorProcess } from './tor-process.ts';
import { DEFAULT_NETWORK_UID, OR_PORT, UPLINK_IFACE, type TorNetwork } from './tor-network.ts';
import { waitFor } from './wait.ts';

export const BRIDGE_ADDRESS = '10.99.0.45';
export const BRIDGE_OBFS4_PORT = 5100;
export const OBFS4PROXY = '/usr/bin/obfs4proxy';

export interface Obfs4Bridge {
  tor: TorProcess;
  fingerprint: string;
  /** The client's bridge line (a secret in real life; a test value here). */
  line: string;
  stop(): Promise<void>;
}

/** Starts the bridge (a non-exit relay with BridgeRelay 1 and obfs4) and waits until it can serve clients. */
export async function startObfs4Bridge(network: TorNetwork, o: { timeoutMs?: number } = {}): Promise<Obfs4Bridge> {
  const timeoutMs = o.timeoutMs ?? 60_000;
  await ipIn(network.namespaces.internet, ['addr', 'replace', `${BRIDGE_ADDRESS}/32`, 'dev', 'lo']);
  const spec: TorNodeSpec = {
    nickname: 'bridge1',
    role: 'relay',
    dataDir: join(network.workDir, 'bridge1'),
    address: BRIDGE_ADDRESS,
    orPort: OR_PORT,
    extraLines: [
      'BridgeRelay 1',
      // Nobody needs to find it: the client has its line.
      'PublishServerDescriptor 0',
      `ServerTransportPlugin obfs4 exec ${OBFS4PROXY}`,
      `ServerTransportListenAddr obfs4 ${BRIDGE_ADDRESS}:${BRIDGE_OBFS4_PORT}`,
      'ExtORPort auto',
    ],
  };
  const uid = DEFAULT_NETWORK_UID;
  const tor = await startTor(spec, renderTorrc(spec, network.context), { netns: network.namespaces.internet, uid, gid: uid, env: LOW_MEMORY_ENV }, Math.min(timeoutMs, 30_000));
  try {
    const bridgeLineFile = join(spec.dataDir, 'pt_state', 'obfs4_bridgeline.txt');
    // The bridge must hold the consensus to extend circuits for its client.
    const cert = await waitFor(async () => {
      if (!tor.running) throw new Error('the bridge tor exited');
      if (!existsSync(bridgeLineFile)) return false;
      if ((await (await tor.control()).getInfo('status/enough-dir-info')) !== '1') return false;
      return /cert=(\S+) iat-mode=\d/.exec(readFileSync(bridgeLineFile, 'utf8'))?.[1] ?? false;
    }, { timeoutMs, what: 'the obfs4 bridge (cert and directory info)', diagnose: () => tor.logTail(10) });
    const fingerprint = readFingerprint(spec.dataDir);
    return { tor, fingerprint, line: `obfs4 ${BRIDGE_ADDRESS}:${BRIDGE_OBFS4_PORT} ${fingerprint} cert=${cert} iat-mode=0`, stop: () => tor.stop() };
  } catch (err) {
    await tor.stop();
    throw err;
  }
}

/**
 * Rejects (TCP reset) everything arriving from the host namespace's uplink
 * for the relays' addresses (ORPorts and DirPorts), in the INTERNET
 * namespace's own nftables: the root namespace is never touched. `allow`
 * lists addresses that stay reachable (the bridge, a proxy).
 */
export async function blockDirectRelayAccess(network: TorNetwork): Promise<{ remove(): Promise<void> }> {
  const table = `torvm_e2e_block_${process.pid}`;
  const addresses = [...new Set(network.relays.map((r) => r.address))].join(', ');
  const rules = [
    `table inet ${table} {`,
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    iifname "${UPLINK_IFACE}" ip daddr { ${addresses} } meta l4proto tcp reject with tcp reset`,
    `    iifname "${UPLINK_IFACE}" ip daddr { ${addresses} } drop`,
    '  }',
    '}',
  ].join('\n');
  const nft = (args: string[], input?: string) => {
    const r = spawnSync('ip', ['netns', 'exec', network.namespaces.internet, 'nft', ...args], { input, encoding: 'utf8', timeout: 10_000 });
    if (r.status !== 0) throw new Error(`nft ${args.join(' ')} failed: ${r.stderr}`);
  };
  nft(['-f', '-'], rules);
  return { remove: async () => nft(['delete', 'table', 'inet', table]) };
}
