import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, writeFileSync, chmodSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.ts';

const fixtures = new URL('../fixtures/', import.meta.url).pathname;
const bin = new URL('../../bin/torvm.js', import.meta.url).pathname;
let dir: string;

before(() => {
  dir = mkdtempSync(join(tmpdir(), 'torvm-cli-'));
  // Copies with a known safe mode, whatever the checkout's umask was.
  for (const kind of ['good', 'bad']) {
    for (const f of readdirSync(join(fixtures, 'config', kind))) {
      copyFileSync(join(fixtures, 'config', kind, f), join(dir, `${kind}-${f}`));
      chmodSync(join(dir, `${kind}-${f}`), 0o600);
    }
  }
});
after(() => rmSync(dir, { recursive: true, force: true }));

async function runCli(args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(args, { out: (t) => out.push(t), err: (t) => err.push(t) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

test('config validate: a valid file prints nothing and exits 0', async () => {
  const r = await runCli(['config', 'validate', join(dir, 'good-full.json')]);
  assert.deepEqual(r, { code: 0, out: '', err: '' });
});

const expected = JSON.parse(readFileSync(join(fixtures, 'config-bad-expected.json'), 'utf8')) as Record<string, string>;
for (const [file, path] of Object.entries(expected)) {
  test(`config validate ${file}: exit 2 naming ${path}`, async () => {
    const r = await runCli(['config', 'validate', join(dir, `bad-${file}`)]);
    assert.equal(r.code, 2);
    assert.ok(r.err.split('\n').some((l) => l.includes(`: ${path}: `)), r.err);
  });
}

test('config validate --json lists problems by path', async () => {
  const r = await runCli(['--json', 'config', 'validate', join(dir, 'bad-proxy-host-injection.json')]);
  assert.equal(r.code, 2);
  const body = JSON.parse(r.out) as { ok: boolean; problems: Array<{ path: string }> };
  assert.equal(body.ok, false);
  assert.ok(body.problems.some((p) => p.path === 'tor.proxy.host'));
});

test('config validate refuses a group-writable file and says how to fix it', async () => {
  const f = join(dir, 'writable.json');
  writeFileSync(f, '{"configVersion":1}');
  chmodSync(f, 0o664);
  const r = await runCli(['config', 'validate', f]);
  assert.equal(r.code, 2);
  assert.match(r.err, /writable by its group/);
  assert.match(r.err, /how to fix: chmod go-w/);
});

test('a config holding secrets (bridge lines, passwords) must not be readable by others; one without them may be', async () => {
  const f = join(dir, 'readable-secrets.json');
  copyFileSync(join(dir, 'good-full.json'), f);
  chmodSync(f, 0o644);
  const r = await runCli(['config', 'validate', f]);
  assert.equal(r.code, 2);
  assert.match(r.err, /holds secrets \(tor\.bridges\.lines, tor\.proxy\.password/);
  assert.match(r.err, /how to fix: chmod 600/);
  const plain = join(dir, 'readable-plain.json');
  writeFileSync(plain, '{"configVersion":1}');
  chmodSync(plain, 0o644);
  assert.equal((await runCli(['config', 'validate', plain])).code, 0);
});

test('config validate refuses a file owned by another user', { skip: process.getuid?.() !== 0 && 'needs root to chown' }, async () => {
  const f = join(dir, 'foreign.json');
  writeFileSync(f, '{"configVersion":1}');
  chmodSync(f, 0o644);
  execFileSync('chown', ['65534:65534', f], { timeout: 5000 });
  const r = await runCli(['config', 'validate', f]);
  assert.equal(r.code, 2);
  assert.match(r.err, /owned by uid 65534/);
});

test('config validate: broken JSON and a missing file exit 2', async () => {
  const f = join(dir, 'broken.json');
  writeFileSync(f, '{"configVersion":1,');
  chmodSync(f, 0o644);
  assert.equal((await runCli(['config', 'validate', f])).code, 2);
  assert.equal((await runCli(['config', 'validate', join(dir, 'nope.json')])).code, 2);
});

test('config show masks secrets', async () => {
  const r = await runCli(['--config', join(dir, 'good-full.json'), 'config', 'show']);
  assert.equal(r.code, 0);
  assert.ok(!r.out.includes('s3cr3t-pass'));
  assert.ok(!r.out.includes('cert='));
  assert.equal((JSON.parse(r.out) as { tor: { proxy: { password: string } } }).tor.proxy.password, '********');
});

test('--accel overrides the config; a bad value is a usage error', async () => {
  const r = await runCli(['--accel', 'tcg', '--config', join(dir, 'good-minimal.json'), 'config', 'show']);
  assert.equal((JSON.parse(r.out) as { vm: { accel: string } }).vm.accel, 'tcg');
  assert.equal((await runCli(['--accel', 'xen', 'config', 'show'])).code, 2);
});

test('usage errors exit 2: unknown command, unknown option, missing argument', async () => {
  assert.equal((await runCli(['bogus'])).code, 2);
  assert.equal((await runCli(['--bogus'])).code, 2);
  assert.equal((await runCli(['config', 'validate'])).code, 2);
});

// The real binary, as a user runs it.
function torvm(args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 60_000 });
}

test('torvm --help lists every command and exits 0', () => {
  const r = torvm(['--help']);
  assert.equal(r.status, 0);
  for (const c of ['up', 'down', 'status', 'restore', 'doctor', 'image', 'config', 'demo', '--headless', '--accel', '--config', '--verbose']) assert.ok(r.stdout.includes(c), c);
});

test('every command has --help', () => {
  for (const c of [['up'], ['down'], ['status'], ['restore'], ['doctor'], ['image', 'build'], ['config', 'validate'], ['config', 'show'], ['config', 'schema'], ['demo'], ['killswitch', 'engage']]) {
    const r = torvm([...c, '--help']);
    assert.equal(r.status, 0, c.join(' '));
    assert.match(r.stdout, /Usage: torvm/);
  }
});

test('torvm config schema prints a JSON Schema', () => {
  const r = torvm(['config', 'schema']);
  assert.equal(r.status, 0);
  const schema = JSON.parse(r.stdout) as { $schema: string; properties: Record<string, unknown> };
  assert.match(schema.$schema, /json-schema/);
  assert.ok('tor' in schema.properties);
});

test('torvm doctor --json reports every check with a verdict', () => {
  const r = torvm(['doctor', '--json']);
  assert.ok(r.status === 0 || r.status === 1, `exit ${r.status}: ${r.stderr}`);
  const report = JSON.parse(r.stdout) as { ok: boolean; checks: Array<{ name: string; ok: boolean; required: boolean; detail: string }> };
  assert.equal(report.ok, r.status === 0);
  const names = report.checks.map((c) => c.name);
  for (const n of ['node', 'config', 'qemu', 'nftables', 'iproute2', 'tun', 'kvm', 'image']) assert.ok(names.includes(n), n);
  assert.ok(report.checks.find((c) => c.name === 'node')?.ok);
  for (const c of report.checks) assert.ok(c.detail.length > 0);
});

test('torvm config validate via the binary: exit 2 on a bad file', () => {
  const r = torvm(['config', 'validate', join(dir, 'bad-qemu-comma.json')]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /vm\.qemuBinary: must not contain a comma/);
  assert.equal(r.stdout, '');
});
