/**
 * The real daemon in service mode (`torvm --headless`, autostart off, so no
 * VM), in a namespace of its own: its API socket belongs to the `torvm`
 * group, which QEMU's account (torvm-qemu) is not in, so a guest escape into
 * QEMU cannot stop the daemon or read its settings; and a SIGHUP (the
 * terminal closed) ends it through its own teardown, not by the default
 * signal death that would leave the socket and run files behind.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from '../../../../test/harness/wait.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && !process.env.CI ? 'needs root' : false;
const bin = new URL('../../bin/torvm.js', import.meta.url).pathname;
const ns = `tvdsvc${process.pid}`;

function curlAs(user: string | null, socketPath: string): Promise<number> {
  const curl = ['curl', '-sS', '-o', '/dev/null', '--max-time', '5', '--unix-socket', socketPath, '-X', 'POST', '-H', 'content-type: application/json', '--data', '{"kind":"user-stop"}', 'http://torvm/v1/stop'];
  const argv = user === null ? curl : ['setpriv', `--reuid=${user}`, `--regid=${user}`, '--init-groups', '--', ...curl];
  return new Promise((resolve) => execFile(argv[0] ?? 'curl', argv.slice(1), { timeout: 15_000 }, (err) => resolve(err ? (typeof err.code === 'number' ? err.code : -1) : 0)));
}

describe('the daemon in service mode', { skip, timeout: 120_000 }, () => {
  let dir = '';
  let socketPath = '';
  let child: ChildProcess | undefined;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  let output = '';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), `torvm-dsvc-${process.pid}-`));
    socketPath = join(dir, 'run', 'torvm.sock');
    mkdirSync(join(dir, 'gui'));
    writeFileSync(join(dir, 'gui', 'index.html'), '<!doctype html><title>TorVM</title>');
    const config = join(dir, 'config.json');
    writeFileSync(config, JSON.stringify({ configVersion: 1, api: { socketPath }, vm: { stateDir: join(dir, 'state') }, service: { autostart: false } }), { mode: 0o600 });
    execFileSync('ip', ['netns', 'add', ns], { timeout: 10_000 });
    execFileSync('ip', ['-n', ns, 'link', 'set', 'lo', 'up'], { timeout: 10_000 });
    mkdirSync(`/etc/netns/${ns}`, { recursive: true });
    writeFileSync(`/etc/netns/${ns}/resolv.conf`, 'nameserver 127.0.0.1\n');
    child = spawn('ip', ['netns', 'exec', ns, process.execPath, bin, '--config', config, '--headless'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TORVM_GUI_DIR: join(dir, 'gui') } });
    child.stdout?.on('data', (d: Buffer) => { output += d.toString(); });
    child.stderr?.on('data', (d: Buffer) => { output += d.toString(); });
    exited = new Promise((resolve) => child?.once('exit', (code, signal) => resolve({ code, signal })));
    await waitFor(async () => /TorVM GUI: http/.test(output) && existsSync(socketPath), { timeoutMs: 60_000, what: `the daemon's API socket (output so far:\n${output})` });
  });

  after(async () => {
    if (child && child.exitCode === null && child.signalCode === null) { child.kill('SIGKILL'); await exited; }
    execFileSync('ip', ['netns', 'del', ns], { timeout: 10_000 });
    rmSync(`/etc/netns/${ns}`, { recursive: true, force: true });
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  test("the API socket is 0660 root:torvm; QEMU's account is refused, root is served", async () => {
    const st = statSync(socketPath);
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.gid, Number(execFileSync('getent', ['group', 'torvm'], { encoding: 'utf8', timeout: 5_000 }).split(':')[2]));
    assert.equal(await curlAs('torvm-qemu', socketPath), 7, 'curl cannot even connect (EACCES) as torvm-qemu');
    assert.equal(await curlAs(null, socketPath), 0);
  });

  test('SIGHUP ends the daemon through its own teardown: exit code 0, socket removed', async () => {
    child?.kill('SIGHUP');
    const end = await Promise.race([exited, new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), 30_000))]);
    assert.deepEqual(end, { code: 0, signal: null }, output);
    assert.equal(existsSync(socketPath), false, 'the socket is gone');
  });
});
