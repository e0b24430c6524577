/**
 * BootstrapMonitor against a real Tor that really tries to bootstrap, and
 * fails: Tor's own BOOTSTRAP PROBLEM text must reach the caller.
 *
 * Safety: this Tor has DisableNetwork 0, so it runs inside a network
 * namespace created here that holds only `lo` (no route out, asserted before
 * Tor starts), as a private test network (TestingTorNetwork with our own
 * DirAuthority line on 127.0.0.1) whose only bridge is 127.0.0.1:1, where
 * nothing listens. The control port is a unix socket (filesystem, not
 * network), which also proves the client's `path` endpoint. Everything is
 * removed by name/PID in `after`.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TorControlClient } from '../../src/tor/control-client.ts';
import { BootstrapMonitor } from '../../src/tor/bootstrap-monitor.ts';
import { generateControlPassword, hashControlPassword } from '../../src/tor/hashed-password.ts';
import { isTorvmError, type TorvmError } from '../../src/core/errors.ts';

const START_TIMEOUT_MS = 30_000;
const FAKE_AUTHORITY_FP = '0123456789ABCDEF0123456789ABCDEF01234567';

const isRoot = process.getuid?.() === 0;
const haveTools = spawnSync('tor', ['--version'], { timeout: 10_000 }).status === 0 && spawnSync('ip', ['-V'], { timeout: 10_000 }).status === 0;
if (process.env.CI && !(isRoot && haveTools)) throw new Error('CI must run this test as root with tor and iproute2 installed');
const skip = isRoot && haveTools ? false : 'needs root, tor and iproute2';

function run(argv: string[]): string {
  const [file, ...args] = argv;
  const result = spawnSync(file as string, args, { encoding: 'utf8', timeout: 10_000 });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr || result.error?.message}`);
  return result.stdout;
}

describe('BootstrapMonitor against a real, failing bootstrap (isolated namespace)', { skip, timeout: 120_000 }, () => {
  const namespace = `tvtc${process.pid}`;
  const netnsEtc = join('/etc/netns', namespace);
  const workDir = mkdtempSync(join(tmpdir(), `torvm-tor-bootstrap-${process.pid}-`));
  const password = generateControlPassword();
  let tor: ChildProcess | undefined;
  let torExited: Promise<unknown> = Promise.resolve();
  let client: TorControlClient | undefined;
  let namespaceCreated = false;

  before(async () => {
    chmodSync(workDir, 0o700); // Tor insists on a private directory for its unix sockets.
    mkdirSync(netnsEtc, { recursive: true });
    writeFileSync(join(netnsEtc, 'resolv.conf'), 'nameserver 127.0.0.1\n');
    run(['ip', 'netns', 'add', namespace]);
    namespaceCreated = true;
    run(['ip', '-n', namespace, 'link', 'set', 'lo', 'up']);
    // The whole safety argument: nothing but loopback, and no route anywhere else.
    assert.deepEqual(JSON.parse(run(['ip', '-n', namespace, '-json', 'link', 'show'])).map((l: { ifname: string }) => l.ifname), ['lo']);
    assert.deepEqual(JSON.parse(run(['ip', '-n', namespace, '-json', 'route', 'show'])), []);
    assert.deepEqual(JSON.parse(run(['ip', '-n', namespace, '-6', '-json', 'route', 'show'])).filter((r: { dev?: string }) => r.dev !== 'lo'), []);

    const controlSocket = join(workDir, 'control');
    const emptyTorrc = join(workDir, 'empty-torrc');
    writeFileSync(emptyTorrc, '');
    // `ip netns exec` execs tor, so the child's PID is Tor's.
    tor = spawn('ip', ['netns', 'exec', namespace, 'tor',
      '--defaults-torrc', emptyTorrc, '-f', emptyTorrc,
      '--RunAsDaemon', '0',
      '--DataDirectory', join(workDir, 'data'),
      '--ControlPort', `unix:${controlSocket}`,
      '--HashedControlPassword', hashControlPassword(password),
      '--TestingTorNetwork', '1',
      '--DirAuthority', `fake orport=2 no-v2 v3ident=${FAKE_AUTHORITY_FP} 127.0.0.1:3 ${FAKE_AUTHORITY_FP}`,
      '--UseBridges', '1',
      '--Bridge', '127.0.0.1:1',
      '--ClientOnly', '1',
      '--SocksPort', `unix:${join(workDir, 'socks')}`,
      '--__OwningControllerProcess', String(process.pid),
      '--Log', 'notice stdout',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    const child = tor;
    torExited = once(child, 'exit');
    const output: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`tor did not open its control socket:\n${output.join('')}`)), START_TIMEOUT_MS);
      child.stdout?.on('data', (chunk: Buffer) => {
        output.push(chunk.toString());
        if (output.join('').includes('Opened Control listener connection (ready)')) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => output.push(chunk.toString()));
      void torExited.then(() => {
        clearTimeout(timer);
        reject(new Error(`tor exited early:\n${output.join('')}`));
      });
    });
    client = new TorControlClient({ path: controlSocket, password, commandTimeoutMs: 10_000 });
    await client.connect();
  });

  after(async () => {
    await client?.close();
    if (tor && tor.exitCode === null && tor.signalCode === null) {
      tor.kill('SIGTERM');
      const timer = setTimeout(() => tor?.kill('SIGKILL'), 5_000);
      await torExited;
      clearTimeout(timer);
    }
    if (namespaceCreated) spawnSync('ip', ['netns', 'del', namespace], { timeout: 10_000 });
    rmSync(netnsEtc, { recursive: true, force: true });
    rmSync(workDir, { recursive: true, force: true });
  });

  it('fails the wait with Tor\'s own problem text, not a generic timeout', async (t) => {
    assert.ok(client);
    const monitor = new BootstrapMonitor(client);
    try {
      await monitor.start();
      // The stall timer is only a backstop; Tor reports the refused bridge within a second or two.
      await assert.rejects(monitor.waitUntilBootstrapped({ stallTimeoutMs: 60_000 }), (err: unknown) => {
        assert.ok(isTorvmError(err, 'ERR_BOOTSTRAP'), String(err));
        const { message } = err as TorvmError;
        t.diagnostic(`reported: ${message}`);
        assert.doesNotMatch(message, /no bootstrap progress/);
        assert.match(message, /Connection refused/);
        assert.match(message, /reason CONNECTREFUSED/);
        assert.match(message, /127\.0\.0\.1:1/);
        return true;
      });
      const { lastProblem, progress } = monitor.snapshot;
      assert.equal(lastProblem?.source, 'bootstrap');
      assert.equal(lastProblem?.warning, 'Connection refused');
      assert.ok(progress >= 0 && progress < 100);
    } finally {
      monitor.stop();
    }
  });
});
