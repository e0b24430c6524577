import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BUILTIN_BRIDGES, BUILTIN_TRANSPORTS, DEFAULT_BUILTIN_TRANSPORT, builtinBridgeLines } from '../../src/core/builtin-bridges.ts';
import { parseBridgeLine } from '../../src/core/bridge-line.ts';
import { defaultConfig, validateConfig } from '../../src/core/config.ts';
import { GUEST } from '../../src/core/guest.ts';
import { renderTorrc } from '../../src/core/torrc.ts';
import { testDefaults } from '../helpers/defaults.ts';
import { assertGolden } from '../helpers/golden.ts';

const runtime = { hashedControlPassword: '16:0123456789ABCDEF60' + 'A'.repeat(40), sandbox: false, builtinBridges: builtinBridgeLines() };
const golden = (name: string) => new URL(`./golden/tor-features/${name}`, import.meta.url).pathname;

test('every built-in bridge line passes parseBridgeLine, under its own transport', () => {
  for (const transport of BUILTIN_TRANSPORTS) {
    assert.ok(BUILTIN_BRIDGES[transport].length > 0, transport);
    for (const line of BUILTIN_BRIDGES[transport]) {
      const parsed = parseBridgeLine(line);
      assert.ok(parsed.ok, `${line}: ${parsed.ok ? '' : parsed.error}`);
      assert.equal(parsed.bridge.transport, transport);
      // Tor Browser's meek line names no fingerprint (the url picks the server); every other line does.
      if (transport === 'meek_lite') assert.equal(parsed.bridge.fingerprint, undefined);
      else assert.ok(parsed.bridge.fingerprint, 'every line names its bridge');
    }
  }
});

test('built-in bridges: no duplicates, and the image ships a client for each transport', () => {
  const all = BUILTIN_TRANSPORTS.flatMap((t) => BUILTIN_BRIDGES[t]);
  assert.equal(new Set(all).size, all.length);
  for (const t of BUILTIN_TRANSPORTS) assert.ok(GUEST.transportPlugins[t], t);
});

test('useBuiltin means the obfs4 lines (Tor Browser recommendedDefault)', () => {
  assert.equal(DEFAULT_BUILTIN_TRANSPORT, 'obfs4');
  assert.deepEqual(builtinBridgeLines(), BUILTIN_BRIDGES.obfs4);
});

test('torrc golden: built-in obfs4 bridges', () => {
  const base = defaultConfig(testDefaults);
  const r = validateConfig({ ...base, tor: { ...base.tor, bridges: { enabled: true, useBuiltin: true, lines: [] } } }, testDefaults);
  assert.ok(r.ok);
  const torrc = renderTorrc(r.config, runtime);
  assertGolden(golden('builtin-obfs4.torrc'), torrc);
  assert.equal(torrc.split('\n').filter((l) => l.startsWith('Bridge obfs4 ')).length, BUILTIN_BRIDGES.obfs4.length);
  assert.ok(torrc.includes('ClientTransportPlugin obfs4 exec /usr/bin/obfs4proxy\n'));
});

test('torrc golden: built-in snowflake bridges and a meek_lite line use their own clients', () => {
  const base = defaultConfig(testDefaults);
  const meek = 'meek_lite 192.0.2.18:80 BE776A53492E1E044A26F17306E1BC46A55A1625 url=https://meek.example/ front=ajax.example.com';
  const r = validateConfig({ ...base, tor: { ...base.tor, bridges: { enabled: true, useBuiltin: false, lines: [...BUILTIN_BRIDGES.snowflake, meek] } } }, testDefaults);
  assert.ok(r.ok);
  const torrc = renderTorrc(r.config, runtime);
  assertGolden(golden('snowflake-meek.torrc'), torrc);
  assert.ok(torrc.includes('ClientTransportPlugin snowflake exec /usr/bin/snowflake-client\n'));
  assert.ok(torrc.includes('ClientTransportPlugin meek_lite exec /usr/bin/obfs4proxy\n'));
  assert.ok(!torrc.includes('Bridge obfs4'), 'useBuiltin off adds no built-in line');
});

test('the built-in meek_lite line renders as Tor Browser ships it, without a fingerprint', () => {
  const base = defaultConfig(testDefaults);
  const r = validateConfig({ ...base, tor: { ...base.tor, bridges: { enabled: true, useBuiltin: false, lines: [...BUILTIN_BRIDGES.meek_lite] } } }, testDefaults);
  assert.ok(r.ok);
  const torrc = renderTorrc(r.config, runtime);
  assert.ok(torrc.includes('Bridge meek_lite 192.0.2.20:80 url=https://1603026938.rsc.cdn77.org front=www.phpmyadmin.net utls=HelloRandomizedALPN\n'), torrc);
  assert.ok(torrc.includes('ClientTransportPlugin meek_lite exec /usr/bin/obfs4proxy\n'));
});

test('usesTransportPlugin: true only when an enabled bridge needs a PT client (Tor refuses those under Sandbox 1)', async () => {
  const { usesTransportPlugin } = await import('../../src/core/builtin-bridges.ts');
  const vanilla = `10.99.0.41:5000 ${'B'.repeat(40)}`;
  assert.equal(usesTransportPlugin({ enabled: false, useBuiltin: true, lines: [] }), false);
  assert.equal(usesTransportPlugin({ enabled: true, useBuiltin: false, lines: [vanilla] }), false);
  assert.equal(usesTransportPlugin({ enabled: true, useBuiltin: true, lines: [vanilla] }), true);
  assert.equal(usesTransportPlugin({ enabled: true, useBuiltin: false, lines: [BUILTIN_BRIDGES.snowflake[0] ?? ''] }), true);
});
