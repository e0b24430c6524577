/** The proxy form's inline checks: the controller's validator messages, and nothing sent that the daemon would refuse. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { checkProxy, type ProxyForm } from '../../web/proxy-check.ts';
import { validateConfig, defaultConfig } from '../../../torvm/src/core/config.ts';
import { linuxDefaults } from '../../../torvm/src/platform/linux/defaults.ts';

const form = (over: Partial<ProxyForm>): ProxyForm => ({ type: 'socks5', host: 'proxy.example', port: '1080', username: '', password: '', ...over });

/** What the daemon's schema says about the same proxy (the form's numbers parsed as the GUI sends them). */
function daemonAccepts(f: ProxyForm): boolean {
  const proxy = f.type === 'none' ? { type: 'none' } : {
    type: f.type, host: f.host, port: Number(f.port),
    ...(f.type !== 'socks4' && f.username !== '' ? { username: f.username, password: f.password } : {}),
  };
  const base = defaultConfig(linuxDefaults);
  return validateConfig({ ...base, tor: { ...base.tor, proxy } }, linuxDefaults).ok;
}

describe('checkProxy', () => {
  it('accepts good proxies of every type, and "none" whatever the fields hold', () => {
    for (const f of [form({}), form({ type: 'https', host: '192.0.2.8', port: '3128', username: 'alice', password: 's3cret!' }), form({ type: 'socks4', port: '65535' }), form({ type: 'none', host: 'a,b', port: 'x' })]) {
      assert.deepEqual(checkProxy(f), {}, JSON.stringify(f));
      assert.equal(daemonAccepts(f), true, JSON.stringify(f));
    }
  });

  it("says the validator's own words for a bad port", () => {
    for (const port of ['0', '65536', '70000', '', 'http', '80a', '1e3', '080', ' 80', '-1']) {
      assert.deepEqual(checkProxy(form({ port })), { port: 'The port must be a port number 1–65535' }, port);
    }
  });

  it('refuses a host with a comma, a newline, a space or nothing, in the validator\'s words', () => {
    for (const host of ['a,b', 'proxy\nexample', 'proxy.example\nSocks5Proxy 6.6.6.6:1', 'a b', '-bad.example', 'x'.repeat(254)]) {
      const problems = checkProxy(form({ host }));
      assert.match(problems.host ?? '', /^The host must be (an IPv4 address or a hostname|at most 253 characters)/, JSON.stringify(host));
      assert.equal(daemonAccepts(form({ host })), false, `the daemon refuses ${JSON.stringify(host)} too`);
    }
    assert.deepEqual(checkProxy(form({ host: '' })), { host: 'The host is required' });
  });

  it('wants both credentials or neither, and no quotes, spaces or ":" in the user name', () => {
    assert.deepEqual(checkProxy(form({ username: 'alice' })), { password: 'Give both a user name and a password, or neither' });
    assert.deepEqual(checkProxy(form({ password: 'pw' })), { username: 'Give both a user name and a password, or neither' });
    assert.deepEqual(checkProxy(form({ username: 'al:ice', password: 'pw' })), { username: 'The user name must not contain ":"' });
    assert.deepEqual(checkProxy(form({ username: 'alice', password: 'p w' })), { password: 'The password must be printable ASCII without spaces' });
    assert.deepEqual(checkProxy(form({ username: 'alice', password: 'p"w' })), { password: 'The password must not contain quotes, backslashes or "#"' });
    assert.equal(daemonAccepts(form({ username: 'al:ice', password: 'pw' })), false);
  });
});
