import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setImmediate as tick } from 'node:timers/promises';
import {
  BANDWIDTH_HISTORY, PROXY_OPTIONS, addressFromNetworkStatus, attachTorStatus, bridgeConfEntries, parseCircuitStatusLine, proxyConfEntries,
  type TorStatusSource,
} from '../../src/daemon/tor-features.ts';
import { StatusStore } from '../../src/daemon/status-store.ts';
import { defaultConfig, validateConfig, type TorvmConfig } from '../../src/core/config.ts';
import { renderTorrc } from '../../src/core/torrc.ts';
import { builtinBridgeLines } from '../../src/core/builtin-bridges.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import type { ControlClientState } from '../../src/tor/control-client.ts';
import { parseEvent, type TorEvent, type TorEventName } from '../../src/tor/events.ts';
import { ControlReplyParser } from '../../src/tor/reply-parser.ts';
import { renderSetConf } from '../../src/tor/commands.ts';
import { testDefaults } from '../helpers/defaults.ts';

const FP_A = 'A'.repeat(40);
const FP_B = 'B'.repeat(40);
const FP_C = 'C'.repeat(40);

/** Stands in for TorControlClient; events are typed from Tor's wire format. */
class FakeTor implements TorStatusSource {
  readonly enabled: TorEventName[][] = [];
  readonly info = new Map<string, string>();
  infoError: Error | null = null;
  readonly asked: string[] = [];
  private readonly events = new Set<(e: TorEvent) => void>();
  private readonly states = new Set<(s: ControlClientState) => void>();
  async enableEvents(events: readonly TorEventName[]) { this.enabled.push([...events]); }
  async getInfo(keys: readonly string[]) {
    this.asked.push(...keys);
    if (this.infoError && !keys.includes('circuit-status')) throw this.infoError;
    return new Map(keys.map((k) => [k, this.info.get(k) ?? '']));
  }
  onEvent(l: (e: TorEvent) => void) { this.events.add(l); return () => this.events.delete(l); }
  onStateChange(l: (s: ControlClientState) => void) { this.states.add(l); return () => this.states.delete(l); }
  emit(line: string) {
    const [message] = new ControlReplyParser().push(`650 ${line}\r\n`);
    assert.ok(message);
    for (const l of this.events) l(parseEvent(message));
  }
  setState(s: ControlClientState) { for (const l of this.states) l(s); }
}

async function settle() { for (let i = 0; i < 30; i++) await tick(); }

describe('attachTorStatus', () => {
  it('subscribes to CIRC and BW and seeds circuits from circuit-status', async () => {
    const tor = new FakeTor();
    tor.info.set('circuit-status', `1 BUILT $${FP_A}~alpha,$${FP_B}~beta,$${FP_C}~gamma BUILD_FLAGS=NEED_CAPACITY PURPOSE=GENERAL\n2 EXTENDED $${FP_A}~alpha PURPOSE=GENERAL`);
    const status = new StatusStore(true);
    attachTorStatus(tor, status);
    await settle();
    assert.deepEqual(tor.enabled, [['CIRC', 'BW']]);
    const circuits = status.get().tor.circuits;
    assert.equal(circuits.length, 1, 'only built circuits are listed');
    assert.deepEqual(circuits[0], {
      id: '1', status: 'BUILT', purpose: 'GENERAL',
      hops: [{ fingerprint: FP_A, nickname: 'alpha', country: null }, { fingerprint: FP_B, nickname: 'beta', country: null }, { fingerprint: FP_C, nickname: 'gamma', country: null }],
    });
  });

  it('adds BUILT circuits and drops CLOSED and FAILED ones', async () => {
    const tor = new FakeTor();
    const status = new StatusStore(true);
    attachTorStatus(tor, status);
    await settle();
    tor.emit(`CIRC 7 LAUNCHED PURPOSE=GENERAL`);
    assert.equal(status.get().tor.circuits.length, 0);
    tor.emit(`CIRC 7 BUILT $${FP_A}~a,$${FP_B}~b,$${FP_C}~c PURPOSE=GENERAL`);
    tor.emit(`CIRC 8 BUILT $${FP_B}~b,$${FP_A}~a,$${FP_C}~c PURPOSE=CONFLUX_LINKED`);
    assert.deepEqual(status.get().tor.circuits.map((c) => c.id), ['7', '8']);
    tor.emit(`CIRC 7 CLOSED $${FP_A}~a,$${FP_B}~b,$${FP_C}~c REASON=FINISHED`);
    tor.emit(`CIRC 8 FAILED $${FP_B}~b REASON=TIMEOUT`);
    assert.deepEqual(status.get().tor.circuits, []);
  });

  it('keeps bandwidth current with at most BANDWIDTH_HISTORY samples, oldest first', async () => {
    const tor = new FakeTor();
    const status = new StatusStore(true);
    let t = 1000;
    attachTorStatus(tor, status, { now: () => t });
    for (let i = 0; i < BANDWIDTH_HISTORY + 5; i++) { t += 1000; tor.emit(`BW ${i * 10} ${i}`); }
    const bw = status.get().tor.bandwidth;
    assert.equal(bw.readBps, (BANDWIDTH_HISTORY + 4) * 10);
    assert.equal(bw.writtenBps, BANDWIDTH_HISTORY + 4);
    assert.equal(bw.history.length, BANDWIDTH_HISTORY);
    assert.deepEqual(bw.history[0], { t: 7000, read: 50, written: 5 });
  });

  it('fills hop countries from ns/id and ip-to-country when Tor has GeoIP', async () => {
    const tor = new FakeTor();
    tor.info.set(`ns/id/${FP_A}`, `r alpha qqqq rrrr 2026-11-25 10:00:00 198.51.100.7 9001 0\ns Fast Guard Running Stable Valid`);
    tor.info.set('ip-to-country/198.51.100.7', 'de');
    const status = new StatusStore(true);
    attachTorStatus(tor, status);
    await settle();
    tor.emit(`CIRC 3 BUILT $${FP_A}~alpha,$${FP_B}~beta PURPOSE=GENERAL`);
    await settle();
    const hops = status.get().tor.circuits[0]?.hops ?? [];
    assert.equal(hops[0]?.country, 'de');
    assert.equal(hops[1]?.country, null, 'a relay Tor cannot place stays null');
  });

  it('gives up on countries for good when Tor has no GeoIP data', async () => {
    const tor = new FakeTor();
    tor.infoError = new Error('552 GeoIP data not loaded');
    const status = new StatusStore(true);
    attachTorStatus(tor, status);
    await settle();
    tor.emit(`CIRC 3 BUILT $${FP_A}~alpha,$${FP_B}~beta PURPOSE=GENERAL`);
    await settle();
    tor.emit(`CIRC 4 BUILT $${FP_C}~gamma PURPOSE=GENERAL`);
    await settle();
    assert.equal(tor.asked.filter((k) => k.startsWith('ns/id/')).length, 1, 'one failed lookup stops the rest');
    assert.ok(status.get().tor.circuits.every((c) => c.hops.every((h) => h.country === null)));
  });

  it('re-reads circuits after a reconnect and clears everything when the connection closes', async () => {
    const tor = new FakeTor();
    const status = new StatusStore(true);
    attachTorStatus(tor, status);
    tor.emit(`CIRC 1 BUILT $${FP_A}~a PURPOSE=GENERAL`);
    tor.emit('BW 100 200');
    tor.info.set('circuit-status', `9 BUILT $${FP_B}~b PURPOSE=GENERAL`);
    tor.setState('ready');
    await settle();
    assert.deepEqual(status.get().tor.circuits.map((c) => c.id), ['9']);
    tor.setState('closed');
    assert.deepEqual(status.get().tor.circuits, []);
    assert.deepEqual(status.get().tor.bandwidth, { readBps: 0, writtenBps: 0, history: [] });
  });

  it('stops updating once detached', async () => {
    const tor = new FakeTor();
    const status = new StatusStore(true);
    const detach = attachTorStatus(tor, status);
    detach();
    tor.emit(`CIRC 1 BUILT $${FP_A}~a PURPOSE=GENERAL`);
    tor.emit('BW 100 200');
    assert.deepEqual(status.get().tor.circuits, []);
    assert.equal(status.get().tor.bandwidth.readBps, 0);
  });
});

describe('parsers', () => {
  it('circuit-status lines, and junk is ignored', () => {
    assert.deepEqual(parseCircuitStatusLine(`12 BUILT $${FP_A}~x PURPOSE=HS_CLIENT_REND`), { id: '12', status: 'BUILT', purpose: 'HS_CLIENT_REND', hops: [{ fingerprint: FP_A, nickname: 'x', country: null }] });
    assert.deepEqual(parseCircuitStatusLine('5 LAUNCHED'), { id: '5', status: 'LAUNCHED', purpose: null, hops: [] });
    // A bridge line without fingerprint (meek): Tor shows the bridge as all zeros until it learns the identity.
    assert.deepEqual(parseCircuitStatusLine(`1 BUILT $${'0'.repeat(40)} PURPOSE=GENERAL`)?.hops, [{ fingerprint: null, nickname: null, country: null }]);
    assert.equal(parseCircuitStatusLine(''), undefined);
    assert.equal(parseCircuitStatusLine('OK'), undefined);
  });
  it('the address of a relay from its ns entry', () => {
    assert.equal(addressFromNetworkStatus('r nick id dg 2026-01-01 00:00:00 10.99.0.21 5000 7000\ns Running'), '10.99.0.21');
    assert.equal(addressFromNetworkStatus('s Running'), null);
  });
});

function withTor(base: TorvmConfig, tor: Partial<TorvmConfig['tor']>): TorvmConfig {
  const r = validateConfig({ ...base, tor: { ...base.tor, ...tor } }, testDefaults);
  assert.ok(r.ok, JSON.stringify(r));
  return r.config;
}
const runtime = { hashedControlPassword: '16:' + 'A'.repeat(58), sandbox: false, builtinBridges: builtinBridgeLines() };
/** The torrc lines for `keys`, as SETCONF would set them. */
const torrcLines = (config: TorvmConfig, keys: readonly string[]) =>
  renderTorrc(config, runtime).split('\n').filter((l) => keys.includes(l.split(' ')[0] ?? ''));
const confLines = (entries: Record<string, string | readonly string[] | null>) =>
  Object.entries(entries).flatMap(([k, v]) => (v === null ? [] : typeof v === 'string' ? [`${k} ${v}`] : v.map((x) => `${k} ${x}`)));

describe('live SETCONF entries match the boot torrc', () => {
  const base = defaultConfig(testDefaults);
  const obfs4 = 'obfs4 10.99.0.40:5100 ' + FP_A + ' cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0';
  const bridgeKeys = ['UseBridges', 'ClientTransportPlugin', 'Bridge'];

  for (const [name, bridges] of [
    ['custom obfs4 + vanilla', { enabled: true, useBuiltin: false, lines: [obfs4, `10.99.0.41:5000 ${FP_B}`] }],
    ['built-in plus custom', { enabled: true, useBuiltin: true, lines: [obfs4] }],
  ] as const) {
    it(`bridges: ${name}`, () => {
      const config = withTor(base, { bridges: { ...bridges, lines: [...bridges.lines] } });
      const entries = bridgeConfEntries(config.tor.bridges, builtinBridgeLines());
      assert.deepEqual(confLines(entries).sort(), torrcLines(config, bridgeKeys).sort());
    });
  }

  it('bridges off resets every bridge option', () => {
    assert.deepEqual(bridgeConfEntries(base.tor.bridges, builtinBridgeLines()), { UseBridges: null, Bridge: null, ClientTransportPlugin: null });
    assert.equal(renderSetConf(bridgeConfEntries(base.tor.bridges, [])), 'SETCONF UseBridges Bridge ClientTransportPlugin');
  });

  it('bridges on with nothing to use is refused', () => {
    assert.throws(() => bridgeConfEntries({ enabled: true, useBuiltin: true, lines: [] }, []), (e: unknown) => isTorvmError(e, 'ERR_CONFIG_INVALID'));
  });

  for (const proxy of [
    { type: 'https', host: '10.99.0.60', port: 3128, username: 'u1', password: 'pw-https' },
    { type: 'https', host: 'proxy.example', port: 8080 },
    { type: 'socks5', host: '10.99.0.61', port: 1080, username: 'u2', password: 'pw-socks' },
    { type: 'socks4', host: '10.99.0.62', port: 1080 },
    { type: 'none' },
  ] as const) {
    it(`proxy ${proxy.type}${'username' in proxy ? ' with auth' : ''}: same lines as torrc, every other proxy option reset`, () => {
      const config = withTor(base, { proxy: { ...proxy } as TorvmConfig['tor']['proxy'] });
      const entries = proxyConfEntries(config.tor.proxy);
      assert.deepEqual(Object.keys(entries).sort(), [...PROXY_OPTIONS].sort());
      assert.deepEqual(confLines(entries).sort(), torrcLines(config, PROXY_OPTIONS).sort());
    });
  }
});
