/**
 * `torvm service install|status|uninstall --root DIR`, run as a user would:
 * the real CLI in a child process, writing only under a temporary --root.
 * It never calls systemctl (--root) and never touches /etc/systemd.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICE_MARKER } from '../../src/service/service-description.ts';

const bin = new URL('../../bin/torvm.js', import.meta.url).pathname;
const EARLY = 'torvm-early-boot-blocking.service';
const MAIN = 'torvm.service';
let dir = '';
let config = '';

function torvm(args: string[], cwd = dir) {
  const r = spawnSync(process.execPath, [bin, '--config', config, ...args], { encoding: 'utf8', timeout: 60_000, cwd });
  return { status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function writeConfig(autostart: boolean): void {
  writeFileSync(config, JSON.stringify({ configVersion: 1, service: { autostart } }), { mode: 0o600 });
}

const unitDir = (root: string) => join(root, 'etc/systemd/system');
const listing = (path: string) => (existsSync(path) ? readdirSync(path, { recursive: true }).map(String).sort() : []);

before(() => {
  dir = mkdtempSync(join(tmpdir(), `torvm-svc-${process.pid}-`));
  config = join(dir, 'config.json');
  writeConfig(true);
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('install --root writes both units 0644, root-owned, with the marker; a second install changes nothing', () => {
  const root = join(dir, 'root-a');
  const r = torvm(['service', 'install', '--root', root]);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /--root was given/);
  assert.match(r.stdout, /run: systemctl enable torvm-early-boot-blocking\.service torvm\.service/);
  assert.deepEqual(listing(unitDir(root)), [EARLY, MAIN].sort());
  for (const name of [EARLY, MAIN]) {
    const st = statSync(join(unitDir(root), name));
    assert.equal(st.mode & 0o777, 0o644, name);
    if (process.getuid?.() === 0) assert.deepEqual([st.uid, st.gid], [0, 0], name);
    assert.ok(readFileSync(join(unitDir(root), name), 'utf8').includes(SERVICE_MARKER));
  }
  const execStart = /^ExecStart=(\S+) (\S+) --headless --config (\S+)$/m.exec(readFileSync(join(unitDir(root), MAIN), 'utf8'));
  assert.ok(execStart, 'ExecStart runs the daemon in service mode with the config given');
  assert.deepEqual([execStart[1], execStart[3]], [process.execPath, config]);
  assert.ok(existsSync(execStart[2] ?? '') && (execStart[2] ?? '').endsWith('/bin/torvm.js'), `the CLI entry exists: ${execStart[2]}`);

  const before = statSync(join(unitDir(root), MAIN)).mtimeMs;
  const again = torvm(['service', 'install', '--root', root, '--json']);
  assert.equal(again.status, 0, again.stderr);
  const result = JSON.parse(again.stdout) as { written: string[]; unchanged: string[]; activated: boolean };
  assert.deepEqual([result.written, result.unchanged.sort(), result.activated], [[], [EARLY, MAIN].sort(), false]);
  assert.equal(statSync(join(unitDir(root), MAIN)).mtimeMs, before);

  const status = torvm(['service', 'status', '--root', root, '--json']);
  assert.equal(status.status, 0, status.stderr);
  const units = (JSON.parse(status.stdout) as { units: Array<{ name: string; installed: boolean; ours: boolean; current: boolean }> }).units;
  assert.deepEqual(units.map((u) => [u.name, u.installed, u.ours, u.current]), [[EARLY, true, true, true], [MAIN, true, true, true]]);
});

test('autostart off: install removes the early-boot blocker it wrote before', () => {
  const root = join(dir, 'root-b');
  assert.equal(torvm(['service', 'install', '--root', root]).status, 0);
  writeConfig(false);
  try {
    const r = torvm(['service', 'install', '--root', root]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /removed .*torvm-early-boot-blocking\.service/);
    assert.deepEqual(listing(unitDir(root)), [MAIN]);
  } finally {
    writeConfig(true);
  }
});

test('a unit TorVM did not write is refused (exit 2, nothing written) until --force', () => {
  const root = join(dir, 'root-c');
  mkdirSync(unitDir(root), { recursive: true });
  writeFileSync(join(unitDir(root), MAIN), '# the admin\'s own torvm.service\n');
  const refused = torvm(['service', 'install', '--root', root]);
  assert.equal(refused.status, 2, refused.stderr);
  assert.match(refused.stderr, /refusing to overwrite .*torvm\.service/);
  assert.match(refused.stderr, /--force/);
  assert.deepEqual(listing(unitDir(root)), [MAIN], 'nothing else was written');
  assert.equal(readFileSync(join(unitDir(root), MAIN), 'utf8'), '# the admin\'s own torvm.service\n');

  const leftAlone = torvm(['service', 'uninstall', '--root', root]);
  assert.equal(leftAlone.status, 0, leftAlone.stderr);
  assert.match(leftAlone.stdout, /left .*torvm\.service \(TorVM did not write it\)/);
  assert.ok(existsSync(join(unitDir(root), MAIN)));

  const forced = torvm(['service', 'install', '--root', root, '--force']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.ok(readFileSync(join(unitDir(root), MAIN), 'utf8').includes(SERVICE_MARKER));
});

test('uninstall removes exactly what install wrote, and is idempotent', () => {
  const root = join(dir, 'root-d');
  assert.equal(torvm(['service', 'install', '--root', root]).status, 0);
  writeFileSync(join(unitDir(root), 'other.service'), '[Unit]\n');
  const r = torvm(['service', 'uninstall', '--root', root]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(listing(unitDir(root)), ['other.service']);
  const again = torvm(['service', 'uninstall', '--root', root]);
  assert.equal(again.status, 0, again.stderr);
  assert.match(again.stdout, /nothing to remove/);
  const status = JSON.parse(torvm(['service', 'status', '--root', root, '--json']).stdout) as { units: Array<{ installed: boolean }> };
  assert.deepEqual(status.units.map((u) => u.installed), [false, false]);
});

test('a relative --root exits 2, names the argument, and writes nothing', () => {
  const cwd = join(dir, 'cwd');
  mkdirSync(cwd);
  for (const bad of ['relative/root', '']) {
    const r = torvm(['service', 'install', '--root', bad], cwd);
    assert.equal(r.status, 2, `${bad}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /--root must be an absolute directory/);
  }
  assert.deepEqual(readdirSync(cwd), [], 'nothing was written under the working directory');
});
