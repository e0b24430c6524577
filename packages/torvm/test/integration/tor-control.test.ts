/**
 * TorControlClient and BootstrapMonitor against a real Tor (Debian `tor`).
 *
 * Safety: the Tor here can never reach the public network. It runs with
 * DisableNetwork 1, and as a second net UseBridges 1 with only loopback
 * bridges (127.0.0.1:1), so even a DisableNetwork 0 could only touch loopback;
 * no test ever sets DisableNetwork. Its only client port is a unix socket
 * (needed so NEWNYM is honoured; Tor does not open it while DisableNetwork is
 * set). It reads no system torrc, and __OwningControllerProcess makes it exit
 * if this test process dies. It is stopped by PID in `after`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorControlClient, type ControlClientState, type TorEvent } from '../../src/tor/control-client.ts';
import { BootstrapMonitor } from '../../src/tor/bootstrap-monitor.ts';
import { parseBootstrapStatus } from '../../src/tor/events.ts';
import { generateControlPassword, hashControlPassword, parseHashedControlPassword } from '../../src/tor/hashed-password.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const TOR = 'tor';
const START_TIMEOUT_MS = 30_000;
const WAIT_MS = 10_000;

const torAvailable = spawnSync(TOR, ['--version'], { timeout: 10_000 }).status === 0;
if (!torAvailable && process.env.CI) throw new Error('tor is not installed, but CI must run the Tor control tests (apt-get install tor)');
const skip = torAvailable ? false : 'tor is not installed (apt-get install tor)';

interface RunningTor {
  child: ChildProcess;
  port: number;
  output: string[];
  exited: Promise<void>;
}

const workDir = mkdtempSync(join(tmpdir(), `torvm-tor-control-${process.pid}-`));
const password = generateControlPassword();
const hashedPassword = hashControlPassword(password);
const started: RunningTor[] = [];

/** Starts Tor and resolves once its control listener is open (read from its own log). */
async function startTor(port: number | 'auto'): Promise<RunningTor> {
  const emptyTorrc = join(workDir, 'empty-torrc');
  writeFileSync(emptyTorrc, '');
  const args = [
    '--defaults-torrc', emptyTorrc, '-f', emptyTorrc,
    '--RunAsDaemon', '0',
    '--DataDirectory', join(workDir, 'data'),
    '--ControlPort', `127.0.0.1:${port}`,
    '--HashedControlPassword', hashedPassword,
    '--DisableNetwork', '1',
    '--UseBridges', '1',
    '--Bridge', '127.0.0.1:1',
    '--ClientOnly', '1',
    '--SocksPort', `unix:${join(workDir, 'socks.sock')}`,
    '--AvoidDiskWrites', '1',
    '--__OwningControllerProcess', String(process.pid),
    '--Log', 'notice stdout',
  ];
  const child = spawn(TOR, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  const exited = once(child, 'exit').then(() => undefined);
  const tor: RunningTor = { child, port: 0, output, exited };
  started.push(tor);
  tor.port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tor did not open its control port in ${START_TIMEOUT_MS} ms:\n${output.join('')}`)), START_TIMEOUT_MS);
    const onData = (chunk: Buffer): void => {
      output.push(chunk.toString());
      const match = /Opened Control listener connection \(ready\) on 127\.0\.0\.1:(\d+)/.exec(output.join(''));
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`tor exited early (code ${child.exitCode}):\n${output.join('')}`));
    });
  });
  return tor;
}

async function stopTor(tor: RunningTor): Promise<void> {
  if (tor.child.exitCode !== null || tor.child.signalCode !== null) return;
  tor.child.kill('SIGTERM');
  const timer = setTimeout(() => tor.child.kill('SIGKILL'), 5_000);
  await tor.exited;
  clearTimeout(timer);
}

function waitFor<T>(what: string, register: (resolve: (value: T) => void) => () => void, ms = WAIT_MS): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let off: () => void = () => {};
    const timer = setTimeout(() => {
      off();
      reject(new Error(`timed out waiting for ${what}`));
    }, ms);
    off = register((value) => {
      clearTimeout(timer);
      off();
      resolve(value);
    });
  });
}

const waitForState = (client: TorControlClient, state: ControlClientState): Promise<ControlClientState> =>
  client.state === state ? Promise.resolve(state) : waitFor(`state ${state}`, (resolve) => client.onStateChange((s) => s === state && resolve(s)));

const waitForEvent = (client: TorControlClient, match: (e: TorEvent) => boolean, what: string): Promise<TorEvent> =>
  waitFor(what, (resolve) => client.onEvent((e) => match(e) && resolve(e)));

describe('Tor control protocol against a real tor', { skip, timeout: 180_000 }, () => {
  let tor: RunningTor;
  let client: TorControlClient;
  const clients: TorControlClient[] = [];

  const newClient = (pw = password): TorControlClient => {
    const c = new TorControlClient({
      host: '127.0.0.1', port: tor.port, password: pw, commandTimeoutMs: WAIT_MS,
      reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
    });
    clients.push(c);
    return c;
  };

  before(async () => {
    tor = await startTor('auto');
    client = newClient();
    await client.connect();
  });

  after(async () => {
    for (const c of clients) await c.close();
    for (const t of started) await stopTor(t);
    rmSync(workDir, { recursive: true, force: true });
  });

  it('our hash matches `tor --hash-password` for the same salt', () => {
    const secret = 'a "quoted" \\ pässword';
    const result = spawnSync(TOR, ['--hash-password', secret, '--quiet'], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(result.status, 0, result.stderr);
    const torHash = result.stdout.trim().split('\n').at(-1) ?? '';
    assert.equal(hashControlPassword(secret, parseHashedControlPassword(torHash).salt), torHash);
  });

  it('authenticates with the password whose hash Tor was given', () => {
    assert.equal(client.state, 'ready');
    assert.ok(client.protocolInfo?.authMethods.includes('HASHEDPASSWORD'));
    assert.match(client.protocolInfo?.torVersion ?? '', /^0\.4\./);
  });

  it('refuses a wrong password with 515', async () => {
    const wrong = newClient(`${password}x`);
    await assert.rejects(wrong.connect(), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL') && err.details?.status === 515);
    assert.equal(wrong.state, 'closed');
  });

  it('GETINFO version, status/bootstrap-phase and a data block (config-text)', async () => {
    const info = await client.getInfo(['version', 'status/bootstrap-phase', 'config-text']);
    assert.match(info.get('version') ?? '', /^0\.4\.\d+\.\d+/);
    const phase = parseBootstrapStatus(info.get('status/bootstrap-phase') ?? '');
    assert.deepEqual(phase && [phase.kind, phase.progress, phase.tag], ['progress', 0, 'starting']);
    const configText = (info.get('config-text') ?? '').split('\n');
    assert.ok(configText.includes('DisableNetwork 1'), configText.join('\n'));
    assert.ok(configText.includes('UseBridges 1'));
  });

  it('reports an unknown GETINFO key as an error reply', async () => {
    await assert.rejects(client.getInfo(['no/such/key']), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL') && err.details?.status === 552);
  });

  it('SETCONF / GETCONF / RESETCONF round-trip hostile values exactly', async () => {
    const hostile = [
      'a "quoted" value',
      'back\\slash and \\\\ two',
      'ends with a backslash\\',
      '"starts with a quote',
      '  leading and trailing spaces  ',
      'tab\tinside',
      'héllo wörld ✓',
      'key=value "=" # not a comment',
    ];
    for (const value of hostile) {
      await client.setConf({ ContactInfo: value });
      assert.deepEqual((await client.getConf(['ContactInfo'])).get('ContactInfo'), [value], JSON.stringify(value));
    }
    await client.resetConf(['ContactInfo']);
    assert.deepEqual((await client.getConf(['ContactInfo'])).get('ContactInfo'), []);
  });

  it('sets repeated options (loopback bridges only) and reads them back', async () => {
    const bridges = ['127.0.0.1:1', '127.0.0.1:2 0123456789ABCDEF0123456789ABCDEF01234567'];
    await client.setConf({ Bridge: bridges });
    assert.deepEqual((await client.getConf(['Bridge'])).get('Bridge'), bridges);
    await client.setConf({ Bridge: '127.0.0.1:1' });
    assert.deepEqual((await client.getConf(['Bridge', 'UseBridges', 'DisableNetwork'])).get('DisableNetwork'), ['1']);
  });

  it('refuses newline injection client-side; Tor never sees it', async () => {
    await client.setConf({ ContactInfo: 'before' });
    const injections = ['x\r\nSETCONF ContactInfo=injected', 'x\nSIGNAL HALT', 'x\0y', 'x\rSETCONF DisableNetwork=0'];
    for (const value of injections) {
      await assert.rejects(client.setConf({ ContactInfo: value }), (err: unknown) => isTorvmError(err, 'ERR_UNSAFE_VALUE'));
    }
    await assert.rejects(client.getInfo(['version\r\nSIGNAL HALT']), (err: unknown) => isTorvmError(err, 'ERR_UNSAFE_VALUE'));
    const conf = await client.getConf(['ContactInfo', 'DisableNetwork']);
    assert.deepEqual(Object.fromEntries(conf), { ContactInfo: ['before'], DisableNetwork: ['1'] });
    assert.equal(client.state, 'ready');
  });

  it('SETEVENTS delivers typed events (CONF_CHANGED from SETCONF, BW every second)', async () => {
    await client.setEvents(['STATUS_CLIENT', 'CIRC', 'STREAM', 'BW', 'NOTICE', 'WARN', 'CONF_CHANGED']);
    const changed = waitForEvent(client, (e) => e.type === 'CONF_CHANGED', 'CONF_CHANGED');
    await client.setConf({ ContactInfo: 'event "probe"' });
    const event = await changed;
    assert.ok(event.type === 'CONF_CHANGED');
    assert.deepEqual(event.changes, [{ key: 'ContactInfo', value: 'event "probe"' }]);
    const bw = await waitForEvent(client, (e) => e.type === 'BW', 'BW');
    assert.ok(bw.type === 'BW' && bw.bytesRead === 0 && bw.bytesWritten === 0, 'no traffic with DisableNetwork 1');
  });

  it('SIGNAL NEWNYM: applied first, then rate-limited as Tor reports in a NOTICE', async () => {
    const first = await client.newIdentity();
    assert.deepEqual(first, { rateLimited: false });
    const second = await client.newIdentity();
    assert.equal(second.rateLimited, true);
    assert.ok(second.rateLimited && second.delaySeconds !== null && second.delaySeconds > 0 && second.delaySeconds <= 10, JSON.stringify(second));
    assert.match(second.rateLimited ? second.message : '', /^Rate limiting NEWNYM request/);
    // The temporary NOTICE/SIGNAL subscription is undone.
    assert.deepEqual(client.subscribedEvents, ['STATUS_CLIENT', 'CIRC', 'STREAM', 'BW', 'NOTICE', 'WARN', 'CONF_CHANGED']);
  });

  it('BootstrapMonitor: seeds 0% from Tor and explains the stall in Tor\'s words', async () => {
    const monitor = new BootstrapMonitor(client);
    try {
      const snapshot = await monitor.start();
      assert.deepEqual([snapshot.progress, snapshot.tag, snapshot.done], [0, 'starting', false]);
      await assert.rejects(monitor.waitUntilBootstrapped({ stallTimeoutMs: 300 }), (err: unknown) =>
        isTorvmError(err, 'ERR_BOOTSTRAP') && /stuck at 0% \(starting: Starting\)/.test(err.message));
    } finally {
      monitor.stop();
    }
  });

  it('reconnects after Tor is killed and restarted, re-authenticates and re-subscribes', async () => {
    const port = tor.port;
    const reconnecting = waitForState(client, 'reconnecting');
    tor.child.kill('SIGKILL');
    await tor.exited;
    await reconnecting;
    await assert.rejects(client.getInfo(['version'], { timeoutMs: 200 }), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));

    const ready = waitForState(client, 'ready');
    tor = await startTor(port);
    await ready;
    assert.equal((await client.getInfo(['version'])).get('version'), client.protocolInfo?.torVersion);
    // No setEvents() call here: the client re-issued the subscription itself.
    const changed = waitForEvent(client, (e) => e.type === 'CONF_CHANGED', 'CONF_CHANGED after reconnect');
    await client.setConf({ ContactInfo: 'after restart' });
    await changed;
  });

  it('SIGNAL RELOAD re-reads the configuration (controller-set values are dropped)', async () => {
    await client.setConf({ ContactInfo: 'set by controller' });
    await client.signal('RELOAD');
    assert.deepEqual((await client.getConf(['ContactInfo'])).get('ContactInfo'), []);
    assert.deepEqual((await client.getConf(['DisableNetwork'])).get('DisableNetwork'), ['1']);
  });

  it('SIGNAL SHUTDOWN stops Tor', async () => {
    await client.signal('SHUTDOWN');
    await waitFor('tor to exit', (resolve) => {
      void tor.exited.then(() => resolve(undefined));
      return () => {};
    });
    assert.notEqual(tor.child.exitCode ?? tor.child.signalCode, null);
    await client.close();
  });
});
