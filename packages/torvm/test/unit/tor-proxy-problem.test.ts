/**
 * Upstream-proxy failures named in plain words, from Tor's real WARN texts
 * (tor 0.4.9: connection.c log_failed_proxy_connection and
 * connection_read_proxy_handshake, proto_socks.c parse_socks_client,
 * connection_or.c's HTTPS proxy reply), and the bootstrap monitor putting
 * them into the bootstrap problem.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { configuredProxyFromConf, describeProxyFailure, type ConfiguredProxy } from '../../src/tor/proxy-problem.ts';
import { BootstrapMonitor, type BootstrapSource } from '../../src/tor/bootstrap-monitor.ts';
import type { ControlClientState } from '../../src/tor/control-client.ts';
import { parseEvent, type TorEvent, type TorEventName } from '../../src/tor/events.ts';
import { ControlReplyParser } from '../../src/tor/reply-parser.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const SOCKS5: ConfiguredProxy = { kind: 'SOCKS5', address: '10.99.0.61:1080' };
const SOCKS4: ConfiguredProxy = { kind: 'SOCKS4', address: '10.99.0.62:1080' };
const HTTP: ConfiguredProxy = { kind: 'HTTP CONNECT', address: '10.99.0.60:3128' };

describe('describeProxyFailure (Tor\'s own texts)', () => {
  const cases: Array<[string, ConfiguredProxy | undefined, string | undefined, string | undefined]> = [
    ['Proxy Client: unable to connect to 10.99.0.21:5000 ID=<none> RSA_ID=AAAA ("authentication failed")', SOCKS5,
      'credentials', 'The SOCKS5 proxy 10.99.0.61:1080 refused the username or password'],
    ['Proxy Client: unable to connect with 10.99.0.21:5000 ("server doesn\'t support any of our available authentication methods")', SOCKS5,
      'auth-method', 'The SOCKS5 proxy 10.99.0.61:1080 accepts none of the login methods Tor offered: it may need a username and password'],
    ['Proxy Client: unable to connect to 10.99.0.21:5000 ("connection not allowed by ruleset")', SOCKS5,
      'relay-refused', 'The SOCKS5 proxy 10.99.0.61:1080 would not connect Tor to a relay (connection not allowed by ruleset)'],
    ['Proxy Client: unable to connect to 10.99.0.21:5000 ("server rejected connection")', SOCKS4,
      'relay-refused', 'The SOCKS4 proxy 10.99.0.62:1080 would not connect Tor to a relay (server rejected connection)'],
    ['The https proxy refused to allow connection to 10.99.0.21:5000 (status code 407, "Proxy Authentication Required"). Closing.', HTTP,
      'credentials', 'The HTTP CONNECT proxy 10.99.0.60:3128 refused the username or password (HTTP 407 "Proxy Authentication Required")'],
    ['The https proxy refused to allow connection to 10.99.0.21:5000 (status code 403, "Forbidden"). Closing.', HTTP,
      'relay-refused', 'The HTTP CONNECT proxy 10.99.0.60:3128 would not connect Tor to a relay (HTTP 403 "Forbidden")'],
    ['The https proxy sent back an unexpected status code 502 ("Bad Gateway"). Closing.', HTTP,
      'bad-reply', 'The HTTP CONNECT proxy 10.99.0.60:3128 answered HTTP 502 "Bad Gateway" instead of connecting Tor to a relay'],
    ['The connection to the SOCKS5 proxy server at 10.99.0.61:1080 just failed. Make sure that the proxy server is up and running.', SOCKS5,
      'unreachable', 'Tor cannot reach the SOCKS5 proxy 10.99.0.61:1080: check that it is running and that its address and port are right'],
    ['The connection to the HTTP proxy server at 10.99.0.60:3128 just failed. Make sure that the proxy server is up and running.', undefined,
      'unreachable', 'Tor cannot reach the HTTP CONNECT proxy 10.99.0.60:3128: check that it is running and that its address and port are right'],
    // A pluggable transport's own SOCKS listener is "a proxy" to Tor too: not the user's proxy.
    ['The connection to the pluggable transports SOCKS proxy server at 127.0.0.1:40000 just failed. Make sure that the proxy server is up and running.', undefined, undefined, undefined],
    ['Proxy Client: unable to connect to 192.0.2.3:80 ("general SOCKS server failure")', undefined, undefined, undefined],
    // A SOCKS reason while an HTTP proxy is configured cannot be about it.
    ['Proxy Client: unable to connect to 10.99.0.21:5000 ("authentication failed")', HTTP, undefined, undefined],
    ['Problem bootstrapping. Stuck at 2% (conn_done_proxy): Connected to proxy.', SOCKS5, undefined, undefined],
  ];
  for (const [line, proxy, kind, text] of cases) {
    it(`${line.slice(0, 70)}…`, () => {
      const failure = describeProxyFailure(line, proxy);
      assert.equal(failure?.kind, kind);
      assert.equal(failure?.text, text);
    });
  }

  it('keeps the reason printable and short', () => {
    const failure = describeProxyFailure(`Proxy Client: unable to connect to x ("${'\u0007'.repeat(3)}${'a'.repeat(200)}")`, SOCKS5);
    assert.ok(failure);
    assert.ok(!/[\u0000-\u001f]/.test(failure.text));
    assert.ok(failure.text.length < 200);
  });
});

describe('configuredProxyFromConf', () => {
  it('names the one proxy set, from addresses only', () => {
    assert.deepEqual(configuredProxyFromConf(new Map([['HTTPSProxy', []], ['Socks5Proxy', ['10.99.0.61:1080']], ['Socks4Proxy', []]])), SOCKS5);
    assert.deepEqual(configuredProxyFromConf(new Map([['HTTPSProxy', ['10.99.0.60:3128']]])), HTTP);
    assert.equal(configuredProxyFromConf(new Map([['HTTPSProxy', []], ['Socks5Proxy', ['']]])), undefined);
  });
});

/** A control connection that answers GETCONF with the proxy in use. */
class FakeSource implements BootstrapSource {
  proxyConf = new Map<string, string[]>([['Socks5Proxy', ['10.99.0.61:1080']]]);
  confKeys: string[][] = [];
  private readonly listeners = new Set<(event: TorEvent) => void>();
  onEvent(listener: (event: TorEvent) => void): () => void { this.listeners.add(listener); return () => this.listeners.delete(listener); }
  onStateChange(_listener: (state: ControlClientState) => void): () => void { return () => {}; }
  async getInfo(): Promise<Map<string, string>> { return new Map([['status/bootstrap-phase', 'NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"']]); }
  async enableEvents(_events: readonly TorEventName[]): Promise<void> {}
  async getConf(keys: readonly string[]): Promise<Map<string, string[]>> { this.confKeys.push([...keys]); return this.proxyConf; }
  emit(line: string): void {
    const [message] = new ControlReplyParser().push(`650 ${line}\r\n`);
    assert.ok(message);
    for (const listener of this.listeners) listener(parseEvent(message));
  }
}

const AUTH_FAILED = 'WARN Proxy Client: unable to connect to 10.99.0.21:5000 ("authentication failed")';
const GENERIC_PROBLEM = 'STATUS_CLIENT WARN BOOTSTRAP PROGRESS=2 TAG=conn_done_proxy SUMMARY="Connected to proxy" '
  + 'WARNING="general SOCKS server failure" REASON=MISC COUNT=10 RECOMMENDATION=warn HOSTID="AAAA" HOSTADDR="10.99.0.21:5000"';
const settle = () => new Promise((r) => setImmediate(r));

describe('BootstrapMonitor: upstream-proxy problems', () => {
  it('a refused SOCKS5 login becomes the bootstrap problem in plain words; Tor\'s generic report keeps them; no secret', async () => {
    const source = new FakeSource();
    const monitor = new BootstrapMonitor(source);
    await monitor.start();
    source.emit('STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=2 TAG=conn_done_proxy SUMMARY="Connected to proxy"');
    source.emit(AUTH_FAILED);
    await settle();
    assert.equal(monitor.snapshot.lastProblem?.source, 'proxy');
    assert.equal(monitor.snapshot.lastProblem?.message, 'The SOCKS5 proxy 10.99.0.61:1080 refused the username or password');
    assert.deepEqual(source.confKeys, [['HTTPSProxy', 'Socks5Proxy', 'Socks4Proxy']], 'only addresses are read, never Socks5ProxyPassword');
    source.emit(GENERIC_PROBLEM);
    assert.equal(monitor.snapshot.lastProblem?.message, 'The SOCKS5 proxy 10.99.0.61:1080 refused the username or password');
    assert.equal(monitor.snapshot.lastProblem?.count, 10);
  });

  it('does not end the wait (the proxy can be fixed live); bootstrap moving on clears the problem', async () => {
    const source = new FakeSource();
    const monitor = new BootstrapMonitor(source);
    await monitor.start();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: 10_000 });
    source.emit(AUTH_FAILED);
    await settle();
    source.emit(GENERIC_PROBLEM);
    assert.equal(monitor.snapshot.lastProblem?.source, 'proxy');
    source.emit('STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay"');
    assert.equal(monitor.snapshot.lastProblem, undefined);
    source.emit('STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"');
    assert.equal((await waiting).done, true);
    // After 100%, a proxy warning is only a warning.
    source.emit(AUTH_FAILED);
    await settle();
    assert.equal(monitor.snapshot.lastProblem, undefined);
  });

  it('failOn "any" does end the wait on a proxy problem', async () => {
    const source = new FakeSource();
    const monitor = new BootstrapMonitor(source);
    await monitor.start();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: 10_000, failOn: 'any' });
    source.emit(AUTH_FAILED);
    await assert.rejects(waiting, (err: unknown) => isTorvmError(err, 'ERR_BOOTSTRAP') && /refused the username or password/.test(String((err as Error).message)));
  });

  it('without a configured proxy a "Proxy Client" line (a transport\'s) is no proxy problem', async () => {
    const source = new FakeSource();
    source.proxyConf = new Map([['HTTPSProxy', []], ['Socks5Proxy', []], ['Socks4Proxy', []]]);
    const monitor = new BootstrapMonitor(source);
    await monitor.start();
    source.emit(AUTH_FAILED);
    await settle();
    assert.equal(monitor.snapshot.lastProblem, undefined);
    assert.equal(monitor.snapshot.recentWarnings.length, 1);
  });
});
