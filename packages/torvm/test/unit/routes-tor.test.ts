import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dispatch, type DaemonControl } from '../../src/api/routes.ts';
import { TOR_ROUTES, bridgesStatusSchema, changeResultSchema, newnymResultSchema, proxyStatusSchema } from '../../src/api/routes-tor.ts';
import { defaultConfig, type TorvmConfig } from '../../src/core/config.ts';
import { TorvmError } from '../../src/core/errors.ts';
import type { ConfEntries, NewIdentityResult, TorControlClient } from '../../src/tor/index.ts';
import { testDefaults } from '../helpers/defaults.ts';

const OBFS4 = `obfs4 10.99.0.40:5100 ${'A'.repeat(40)} cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0`;

class FakeTor {
  readonly setConfs: ConfEntries[] = [];
  refuse = false;
  newnym: NewIdentityResult = { rateLimited: false };
  async setConf(entries: ConfEntries) {
    if (this.refuse) throw new TorvmError('ERR_TOR_CONTROL', 'Tor refused SETCONF: 513 Unacceptable option value');
    this.setConfs.push(entries);
  }
  async newIdentity() { return this.newnym; }
}

function harness(o: { tor?: FakeTor | null; saveFails?: boolean } = {}) {
  let config: TorvmConfig = defaultConfig(testDefaults);
  const saved: TorvmConfig[] = [];
  const secrets: string[] = [];
  const tor = o.tor === undefined ? new FakeTor() : o.tor;
  const control = {
    status: () => { throw new Error('unused'); },
    subscribe: () => () => {},
    start: () => {},
    stop: () => {},
    config: () => config,
    updateConfig: async (next: TorvmConfig) => {
      if (o.saveFails) throw new TorvmError('ERR_NOT_AVAILABLE', 'no config file to save to');
      saved.push(next);
      config = next;
    },
    tor: () => tor as unknown as TorControlClient | null,
    logs: () => [],
    subscribeLogs: () => () => {},
    addSecret: (s: string) => { secrets.push(s); },
  } satisfies DaemonControl & { addSecret(s: string): void };
  const call = (method: string, path: string, body?: unknown) => dispatch(TOR_ROUTES, control, method, path, async () => body);
  return { control, saved, secrets, tor, call, config: () => config };
}

describe('PUT /v1/bridges', () => {
  it('validates, saves, registers the lines as secrets and applies them live in one SETCONF', async () => {
    const h = harness();
    const r = await h.call('PUT', '/v1/bridges', { enabled: true, lines: [OBFS4] });
    assert.equal(r.code, 200, JSON.stringify(r.json));
    assert.deepEqual(changeResultSchema.parse(r.json), { ok: true, saved: true, applied: true, note: null });
    assert.deepEqual(h.config().tor.bridges, { enabled: true, useBuiltin: false, lines: [OBFS4] });
    assert.ok(h.secrets.includes(OBFS4), 'the whole line');
    assert.ok(h.secrets.some((s) => OBFS4.includes(s) && s !== OBFS4 && /^\d+\.\d+\.\d+\.\d+$/.test(s)), 'and its address on its own (Tor prints it)');
    assert.deepEqual(h.tor?.setConfs, [{ UseBridges: '1', ClientTransportPlugin: ['obfs4 exec /usr/bin/obfs4proxy'], Bridge: [OBFS4.replace(/^obfs4 /, 'obfs4 ')] }]);
    const got = bridgesStatusSchema.parse((await h.call('GET', '/v1/bridges')).json);
    assert.deepEqual(got.lines, [OBFS4]);
    assert.ok(got.builtinCount > 0);
  });

  it('refuses a line that breaks its transport grammar, naming it, and changes nothing', async () => {
    const h = harness();
    const r = await h.call('PUT', '/v1/bridges', { enabled: true, lines: [OBFS4.replace(' iat-mode=0', '')] });
    assert.equal(r.code, 400);
    assert.match(JSON.stringify(r.json), /tor\.bridges\.lines\[0\].*iat-mode/);
    assert.equal(h.saved.length, 0);
    assert.equal(h.tor?.setConfs.length, 0);
  });

  it('refuses an injected second directive', async () => {
    const h = harness();
    const r = await h.call('PUT', '/v1/bridges', { enabled: true, lines: [`${OBFS4}\nSocksPort 0.0.0.0:9050`] });
    assert.equal(r.code, 400);
    assert.equal(h.saved.length, 0);
  });

  it('turning bridges off resets UseBridges, Bridge and ClientTransportPlugin', async () => {
    const h = harness();
    await h.call('PUT', '/v1/bridges', { enabled: true, lines: [OBFS4] });
    const r = await h.call('PUT', '/v1/bridges', { enabled: false, lines: [OBFS4] });
    assert.equal(r.code, 200);
    assert.deepEqual(h.tor?.setConfs.at(-1), { UseBridges: null, Bridge: null, ClientTransportPlugin: null });
  });

  it('without a running Tor, saves and says it applies at the next start', async () => {
    const h = harness({ tor: null });
    const r = changeResultSchema.parse((await h.call('PUT', '/v1/bridges', { enabled: true, useBuiltin: true })).json);
    assert.equal(r.applied, false);
    assert.match(r.note ?? '', /next start/);
    assert.equal(h.saved.length, 1);
  });

  it("reports Tor's refusal of a live change without failing the save", async () => {
    const tor = new FakeTor();
    tor.refuse = true;
    const h = harness({ tor });
    const r = changeResultSchema.parse((await h.call('PUT', '/v1/bridges', { enabled: true, lines: [OBFS4] })).json);
    assert.equal(r.saved, true);
    assert.equal(r.applied, false);
    assert.match(r.note ?? '', /Tor refused/);
  });

  it('a config that cannot be saved is not applied either', async () => {
    const h = harness({ saveFails: true });
    const r = await h.call('PUT', '/v1/bridges', { enabled: true, lines: [OBFS4] });
    assert.equal(r.code, 501);
    assert.equal(h.tor?.setConfs.length, 0);
  });
});

describe('/v1/proxy', () => {
  it('sets an authenticated SOCKS5 proxy live, resetting the other proxy options, and never shows the password', async () => {
    const h = harness();
    const r = await h.call('PUT', '/v1/proxy', { type: 'socks5', host: '10.99.0.61', port: 1080, username: 'alice', password: 'pw-socks5' });
    assert.equal(r.code, 200, JSON.stringify(r.json));
    assert.deepEqual(h.tor?.setConfs, [{
      HTTPSProxy: null, HTTPSProxyAuthenticator: null, Socks5Proxy: '10.99.0.61:1080', Socks5ProxyUsername: 'alice', Socks5ProxyPassword: 'pw-socks5', Socks4Proxy: null,
    }]);
    assert.deepEqual(h.secrets, ['pw-socks5']);
    const shown = (await h.call('GET', '/v1/proxy')).json;
    assert.deepEqual(proxyStatusSchema.parse(shown), { type: 'socks5', host: '10.99.0.61', port: 1080, username: 'alice', hasPassword: true });
    assert.ok(!JSON.stringify(shown).includes('pw-socks5'));
  });

  it('refuses a user name without a password, a bad host, and a socks4 password', async () => {
    const h = harness();
    for (const body of [
      { type: 'https', host: '10.99.0.60', port: 3128, username: 'alice' },
      { type: 'https', host: 'bad host;x', port: 3128 },
      { type: 'socks4', host: '10.99.0.62', port: 1080, password: 'nope-nope' },
      { type: 'socks5', host: '10.99.0.61', port: 70000 },
    ]) {
      const r = await h.call('PUT', '/v1/proxy', body);
      assert.equal(r.code, 400, JSON.stringify(body));
    }
    assert.equal(h.saved.length, 0);
    assert.equal(h.tor?.setConfs.length, 0);
  });

  it('clear resets every proxy option', async () => {
    const h = harness();
    const r = await h.call('PUT', '/v1/proxy', { type: 'none' });
    assert.equal(r.code, 200);
    assert.deepEqual(h.config().tor.proxy, { type: 'none' });
    assert.ok(Object.values(h.tor?.setConfs[0] ?? { x: 'set' }).every((v) => v === null));
  });
});

describe('POST /v1/newnym', () => {
  it('reports a fresh identity and a rate-limited one', async () => {
    const h = harness();
    assert.deepEqual(newnymResultSchema.parse((await h.call('POST', '/v1/newnym')).json).rateLimited, false);
    if (h.tor) h.tor.newnym = { rateLimited: true, delaySeconds: 7, message: 'Rate limiting NEWNYM request: delaying by 7 second(s)' };
    const r = newnymResultSchema.parse((await h.call('POST', '/v1/newnym')).json);
    assert.equal(r.rateLimited, true);
    assert.equal(r.delaySeconds, 7);
    assert.match(r.message, /7 s/);
  });

  it('without a running Tor: 501', async () => {
    const r = await harness({ tor: null }).call('POST', '/v1/newnym');
    assert.equal(r.code, 501);
  });
});
