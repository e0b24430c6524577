/**
 * The Unix socket is the CLI's way in, and its file mode is its only
 * authentication: another local user (uid 65534, nobody) must be refused by
 * the kernel, while root is served. Needs root (to create the socket as root
 * and drop to another uid with setpriv).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { startApiServer } from '../../src/api/server.ts';
import { CORE_ROUTES, type DaemonControl } from '../../src/api/routes.ts';
import { getStatus } from '../../src/api/client.ts';
import type { DaemonStatus } from '../../src/api/schema.ts';

const isRoot = process.getuid?.() === 0;
const skip = !isRoot && !process.env.CI ? 'needs root' : false;

const status: DaemonStatus = {
  apiVersion: 1, state: 'Stopped', since: new Date(0).toISOString(), killSwitch: 'off',
  bootstrap: { progress: 0, tag: '', summary: '', problem: null },
  vm: { pid: null, accel: null, restarts: 0 },
  tor: { version: null, warnings: [], circuits: [], bandwidth: { readBps: 0, writtenBps: 0, history: [] } },
  testingNetwork: false, ended: null, lastError: null,
};
let starts = 0;
const control: DaemonControl = {
  status: () => status, subscribe: () => () => {}, start: () => { starts += 1; }, stop: () => {},
  config: () => { throw new Error('unused'); }, updateConfig: async () => {}, tor: () => null, addSecret: () => {}, logs: () => [], subscribeLogs: () => () => {},
};

/** Runs `curl` against the socket as uid/gid 65534; resolves with curl's exit code and stderr. */
function curlAsNobody(socketPath: string, args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
  return new Promise((resolve) => {
    execFile('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'curl', '-sS', '--max-time', '5', '--unix-socket', socketPath, ...args],
      { timeout: 15_000 }, (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stderr, stdout }));
  });
}

describe('API Unix socket permissions', { skip }, () => {
  let dir: string;
  let socketPath: string;
  let server: Server;

  before(async () => {
    assert.ok(isRoot, 'this test needs root');
    dir = mkdtempSync(join(tmpdir(), `torvm-sock-${process.pid}-`));
    // The directory is open to all, so only the socket's own mode decides.
    chmodSync(dir, 0o755);
    socketPath = join(dir, 'torvm.sock');
    server = await startApiServer(socketPath, CORE_ROUTES, control, { gid: 0 });
  });
  after(async () => {
    server?.closeAllConnections();
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('creates the socket mode 0660, owned by root', () => {
    const st = statSync(socketPath);
    assert.equal(st.mode & 0o777, 0o660);
    assert.equal(st.uid, 0);
  });

  it('serves root', async () => {
    assert.equal((await getStatus(socketPath)).state, 'Stopped');
  });

  it('refuses another local user (uid 65534) at connect time', async () => {
    const read = await curlAsNobody(socketPath, ['http://localhost/v1/status']);
    assert.notEqual(read.code, 0);
    assert.match(read.stderr, /Permission denied|Couldn't connect|Failed to connect/i);
    assert.equal(read.stdout, '');
    const write = await curlAsNobody(socketPath, ['-X', 'POST', 'http://localhost/v1/start']);
    assert.notEqual(write.code, 0);
    assert.equal(starts, 0);
  });
});
