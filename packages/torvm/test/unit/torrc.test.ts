import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { validateConfig, defaultConfig, type TorvmConfig } from '../../src/core/config.ts';
import { renderTorrc } from '../../src/core/torrc.ts';
import { renderKernelCmdline } from '../../src/core/kernel-cmdline.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { assertGolden } from '../helpers/golden.ts';
import { testDefaults } from '../helpers/defaults.ts';

const golden = (name: string) => new URL(`./golden/torrc/${name}`, import.meta.url).pathname;
const runtime = { hashedControlPassword: '16:0123456789ABCDEF60' + 'A'.repeat(40), sandbox: true };

function load(name: string): TorvmConfig {
  const r = validateConfig(JSON.parse(readFileSync(new URL(`../fixtures/config/good/${name}.json`, import.meta.url), 'utf8')), testDefaults);
  assert.ok(r.ok);
  return r.config;
}

test('torrc golden: defaults (the public network)', () => {
  const torrc = renderTorrc(defaultConfig(testDefaults), runtime);
  assertGolden(golden('defaults.torrc'), torrc);
  assert.ok(!torrc.includes('TestingTorNetwork'));
  assert.ok(!torrc.includes('DirAuthority'));
});

test('torrc golden: full config with bridges, proxy, nodes and a testing network', () => {
  assertGolden(golden('full.torrc'), renderTorrc(load('full'), runtime));
});

test('torrc: listeners bind only to the VM address', () => {
  const torrc = renderTorrc(defaultConfig(testDefaults), runtime);
  for (const key of ['SocksPort', 'TransPort', 'DNSPort', 'ControlPort']) {
    const line = torrc.split('\n').find((l) => l.startsWith(`${key} `));
    assert.match(line ?? '', new RegExp(`^${key} 10\\.10\\.10\\.1:\\d+$`));
  }
});

test('torrc: webtunnel bridges are refused because the image ships no client', () => {
  const c = defaultConfig(testDefaults);
  c.tor.bridges = { enabled: true, useBuiltin: false, lines: [`webtunnel [2001:db8::1]:443 ${'A'.repeat(40)} url=https://wt.example/path`] };
  assert.throws(() => renderTorrc(c, runtime), (e) => isTorvmError(e, 'ERR_CONFIG_INVALID'));
});

test('torrc: HTTPS proxy credentials render as one authenticator line', () => {
  const c = defaultConfig(testDefaults);
  c.tor.proxy = { type: 'https', host: '192.0.2.1', port: 3128, username: 'alice', password: 'pw-1234' };
  const torrc = renderTorrc(c, runtime);
  assert.ok(torrc.includes('HTTPSProxy 192.0.2.1:3128\nHTTPSProxyAuthenticator alice:pw-1234\n'));
});

/** The directive keywords of a torrc, in order (comments excluded). */
function shape(torrc: string): string[] {
  return torrc.split('\n').filter((l) => l !== '' && !l.startsWith('#')).map((l) => l.split(' ')[0] ?? '');
}

/** Each string field that reaches torrc, with a setter that bypasses the schema. */
const FIELDS: Array<{ name: string; set: (c: TorvmConfig, v: string) => void }> = [
  { name: 'proxy.host', set: (c, v) => { c.tor.proxy = { type: 'socks5', host: v, port: 1080 }; } },
  { name: 'proxy.username', set: (c, v) => { c.tor.proxy = { type: 'socks5', host: '192.0.2.1', port: 1080, username: v, password: 'benign-pw' }; } },
  { name: 'proxy.password', set: (c, v) => { c.tor.proxy = { type: 'https', host: '192.0.2.1', port: 1080, username: 'alice', password: v }; } },
  { name: 'bridges.lines[0]', set: (c, v) => { c.tor.bridges = { enabled: true, useBuiltin: false, lines: [v] }; } },
  { name: 'nodes.exit[0]', set: (c, v) => { c.tor.nodes.exit = [v]; } },
  { name: 'nodes.exclude[0]', set: (c, v) => { c.tor.nodes.exclude = [v]; } },
  { name: 'network.vmAddress', set: (c, v) => { c.network.vmAddress = v; } },
  { name: 'authority.nickname', set: (c, v) => { c.tor.testingNetwork = { authorities: [{ nickname: v, address: '10.99.0.1', orPort: 5000, dirPort: 7000, v3ident: 'B'.repeat(40), fingerprint: 'A'.repeat(40) }] }; } },
  { name: 'authority.address', set: (c, v) => { c.tor.testingNetwork = { authorities: [{ nickname: 'auth', address: v, orPort: 5000, dirPort: 7000, v3ident: 'B'.repeat(40), fingerprint: 'A'.repeat(40) }] }; } },
  { name: 'authority.v3ident', set: (c, v) => { c.tor.testingNetwork = { authorities: [{ nickname: 'auth', address: '10.99.0.1', orPort: 5000, dirPort: 7000, v3ident: v, fingerprint: 'A'.repeat(40) }] }; } },
  { name: 'hashedControlPassword', set: () => {} },
];
const BENIGN: Record<string, string> = {
  'proxy.host': '192.0.2.1', 'proxy.username': 'alice', 'proxy.password': 'secret', 'bridges.lines[0]': `192.0.2.5:443 ${'C'.repeat(40)}`,
  'nodes.exit[0]': '{de}', 'nodes.exclude[0]': '{ru}', 'network.vmAddress': '10.10.10.1', 'authority.nickname': 'auth',
  'authority.address': '10.99.0.1', 'authority.v3ident': 'B'.repeat(40), hashedControlPassword: runtime.hashedControlPassword,
};

// Strings built to look like injections, plus arbitrary unicode.
const hostile = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.tuple(fc.constantFrom('', 'x', '192.0.2.1', `192.0.2.5:443 ${'C'.repeat(40)}`, '{de}'), fc.constantFrom('\n', '\r', '\u0000', '#', '"', '\\', ' ', '\t', '\nExitNodes {us}', '\r\nControlPort 0.0.0.0:1'), fc.string({ maxLength: 10 }))
    .map(([a, b, c]) => a + b + c),
);

for (const field of FIELDS) {
  test(`property: a hostile ${field.name} never escapes its torrc line`, () => {
    const baseline = defaultConfig(testDefaults);
    field.set(baseline, BENIGN[field.name] ?? 'x');
    const expectedShape = shape(renderTorrc(baseline, runtime));
    fc.assert(fc.property(hostile, (value) => {
      const c = defaultConfig(testDefaults);
      field.set(c, value);
      const rt = field.name === 'hashedControlPassword' ? { ...runtime, hashedControlPassword: value } : runtime;
      let torrc: string;
      try {
        torrc = renderTorrc(c, rt);
      } catch (err) {
        // Refusing is always fine, as long as it is our coded refusal.
        assert.ok(isTorvmError(err, 'ERR_UNSAFE_VALUE') || isTorvmError(err, 'ERR_CONFIG_INVALID'), String(err));
        return;
      }
      assert.deepEqual(shape(torrc), expectedShape);
      for (const line of torrc.split('\n')) {
        if (line.startsWith('#')) continue;
        assert.ok(!/[\r\u0000#"\\]/.test(line), `unsafe character in ${JSON.stringify(line)}`);
      }
    }), { numRuns: 300 });
  });
}

test('property: whatever the schema accepts, the renderer renders', () => {
  fc.assert(fc.property(hostile, fc.constantFrom('host', 'password', 'line', 'exit'), (value, which) => {
    const doc: Record<string, unknown> = { configVersion: 1 };
    if (which === 'host') doc.tor = { proxy: { type: 'socks5', host: value, port: 1080 } };
    if (which === 'password') doc.tor = { proxy: { type: 'socks5', host: '192.0.2.1', port: 1080, username: 'a', password: value } };
    if (which === 'line') doc.tor = { bridges: { enabled: true, lines: [value] } };
    if (which === 'exit') doc.tor = { nodes: { exit: [value] } };
    const r = validateConfig(doc, testDefaults);
    if (!r.ok) return;
    const torrc = renderTorrc(r.config, runtime);
    assert.ok(!/[\r\u0000"\\]/.test(torrc));
  }), { numRuns: 500 });
});

test('kernel cmdline golden and bounds', () => {
  const line = renderKernelCmdline({ loglevel: 4, debug: false }, 'x86_64');
  assert.equal(line, 'console=ttyS0 loglevel=4 panic=1 oops=panic ipv6.disable=1 rdinit=/init');
  assert.equal(renderKernelCmdline({ loglevel: 0, debug: true }, 'aarch64'), 'console=ttyAMA0 loglevel=0 panic=1 oops=panic ipv6.disable=1 rdinit=/init torvm.debug=1');
  fc.assert(fc.property(fc.oneof(fc.integer(), fc.double()), fc.boolean(), (level, debug) => {
    try {
      const out = renderKernelCmdline({ loglevel: level, debug }, 'x86_64');
      assert.ok(Number.isInteger(level) && level >= 0 && level <= 7);
      assert.equal(out.split(' ').length, debug ? 7 : 6);
    } catch (err) {
      assert.ok(isTorvmError(err, 'ERR_UNSAFE_VALUE'));
    }
  }));
});
