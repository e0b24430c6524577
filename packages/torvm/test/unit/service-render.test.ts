/**
 * `torvm service`: the rendered systemd units, launchd plist and sc.exe argv
 * (golden files), the install/uninstall plans, and the systemd backend against
 * a temporary directory with a fake systemctl.
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { assertGolden } from '../helpers/golden.ts';
import { isTorvmError } from '../../src/core/errors.ts';
import { SERVICE_MARKER, type ServiceDescription } from '../../src/service/service-description.ts';
import { renderSystemdUnits, SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT } from '../../src/service/systemd-units.ts';
import { renderLaunchdPlist } from '../../src/service/launchd-plist.ts';
import { renderScCommands } from '../../src/service/sc-exe.ts';
import { planInstall, planUninstall } from '../../src/service/install-plan.ts';
import { createSystemdService } from '../../src/platform/linux/service.ts';
import type { CommandRunner, RunOptions } from '../../src/platform/exec.ts';

const golden = (name: string) => fileURLToPath(new URL(`./golden/service/${name}`, import.meta.url));

const LINUX: ServiceDescription = {
  nodePath: '/usr/bin/node', cliEntry: '/usr/lib/torvm/packages/torvm/bin/torvm.js', configPath: '/etc/torvm/config.json',
  user: 'root', group: 'root', autostart: true, lockdown: false,
};

describe('rendered service files (golden)', () => {
  for (const autostart of [true, false]) {
    test(`systemd units, autostart ${autostart ? 'on' : 'off'}`, () => {
      const files = renderSystemdUnits({ ...LINUX, autostart });
      assert.deepEqual(files.map((f) => f.name), autostart ? [SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT] : [SYSTEMD_MAIN_UNIT]);
      for (const f of files) {
        assert.equal(f.mode, 0o644);
        assert.ok(f.content.startsWith(`# ${SERVICE_MARKER}\n`));
        assertGolden(golden(`autostart-${autostart ? 'on' : 'off'}-${f.name}`), f.content);
      }
    });
  }

  test('lockdown alone also blocks from early boot (a locked-down host must not boot open)', () => {
    const files = renderSystemdUnits({ ...LINUX, autostart: false, lockdown: true });
    assert.deepEqual(files.map((f) => f.name), [SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT]);
    assert.match(files[1]?.content ?? '', new RegExp(`^Wants=${SYSTEMD_EARLY_BOOT_UNIT}$`, 'm'));
  });

  test('the early-boot unit goes after nftables/firewalld, whose ruleset flush would wipe it', () => {
    const early = renderSystemdUnits(LINUX).find((f) => f.name === SYSTEMD_EARLY_BOOT_UNIT)!.content;
    assert.match(early, /^After=.*\bnftables\.service\b.*\bfirewalld\.service\b/m);
  });

  test('the early-boot unit blocks before network-pre.target and never opens the network', () => {
    const early = renderSystemdUnits(LINUX).find((f) => f.name === SYSTEMD_EARLY_BOOT_UNIT)!.content;
    assert.match(early, /^Before=network-pre\.target /m);
    assert.match(early, /^Wants=network-pre\.target$/m);
    assert.match(early, /^DefaultDependencies=no$/m);
    assert.match(early, /^ExecStart=\/usr\/bin\/node \S+ --config \/etc\/torvm\/config\.json killswitch engage --state blocked$/m);
    assert.doesNotMatch(early, /^ExecStop/m);
    assert.doesNotMatch(early, /release/);
  });

  test('the daemon unit runs service mode, restarts on failure, and keeps what QEMU and nft need', () => {
    const main = renderSystemdUnits(LINUX).find((f) => f.name === SYSTEMD_MAIN_UNIT)!.content;
    assert.match(main, /^ExecStart=\/usr\/bin\/node \S+torvm\.js --headless --config \/etc\/torvm\/config\.json$/m);
    assert.match(main, /^After=network-pre\.target torvm-early-boot-blocking\.service$/m);
    assert.match(main, /^Restart=on-failure$/m);
    assert.match(main, /^CapabilityBoundingSet=.*\bCAP_NET_ADMIN\b.*\bCAP_SETUID\b.*\bCAP_SETGID\b/m);
    assert.match(main, /^DeviceAllow=\/dev\/net\/tun rw$/m);
    assert.match(main, /^DeviceAllow=\/dev\/kvm rw$/m);
    assert.doesNotMatch(main, /MemoryDenyWriteExecute|PrivateDevices|ProtectSystem=(full|strict)/);
  });

  test('without --config the units leave the config to the CLI default', () => {
    for (const f of renderSystemdUnits({ ...LINUX, configPath: null })) assert.doesNotMatch(f.content, /--config/);
  });

  test('launchd plist', () => {
    assertGolden(golden('org.torvm.daemon.plist'), renderLaunchdPlist({ ...LINUX, nodePath: '/usr/local/bin/node', cliEntry: '/usr/local/lib/torvm/bin/torvm.js' }).content);
  });

  test('sc.exe argv', () => {
    const argv = renderScCommands({ ...LINUX, nodePath: 'C:\\Program Files\\nodejs\\node.exe', cliEntry: 'C:\\Program Files\\TorVM\\bin\\torvm.js', configPath: 'C:\\ProgramData\\TorVM\\config.json' });
    assertGolden(golden('sc-exe.json'), `${JSON.stringify(argv, null, 2)}\n`);
  });

  test('values that could escape their field are refused', () => {
    const bad: Array<Partial<ServiceDescription>> = [
      { nodePath: 'node' }, { nodePath: '/usr/bin/node\nExecStartPre=/bin/sh' }, { cliEntry: '/opt/torvm %n/torvm.js' }, { cliEntry: '/opt/$HOME/torvm.js' },
      { configPath: '/etc/torvm/a b.json' }, { configPath: '/etc/<x>.json' }, { user: 'root\nUser=evil' }, { group: '' },
    ];
    for (const b of bad) {
      assert.throws(() => renderSystemdUnits({ ...LINUX, ...b }), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'), JSON.stringify(b));
      assert.throws(() => renderLaunchdPlist({ ...LINUX, ...b }), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'), JSON.stringify(b));
    }
    assert.throws(() => renderScCommands({ ...LINUX, nodePath: 'C:\\node" & calc.exe' }), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
    assert.throws(() => renderScCommands({ ...LINUX }), (e) => isTorvmError(e, 'ERR_UNSAFE_VALUE'));
  });
});

describe('install and uninstall plans', () => {
  const ours = (body: string) => `# ${SERVICE_MARKER}\n${body}`;
  const files = [{ name: 'a.service', content: ours('A'), mode: 0o644 }];
  const known = ['a.service', 'b.service'];

  test('missing -> write; identical -> unchanged; ours but different -> write', () => {
    assert.deepEqual(planInstall(files, known, { 'a.service': null, 'b.service': null }, false).write.map((f) => f.name), ['a.service']);
    assert.deepEqual(planInstall(files, known, { 'a.service': ours('A'), 'b.service': null }, false), { write: [], unchanged: ['a.service'], remove: [], refused: [] });
    assert.deepEqual(planInstall(files, known, { 'a.service': ours('old'), 'b.service': null }, false).write.map((f) => f.name), ['a.service']);
  });

  test('a foreign file is refused unless forced', () => {
    assert.deepEqual(planInstall(files, known, { 'a.service': 'someone else', 'b.service': null }, false).refused, ['a.service']);
    const forced = planInstall(files, known, { 'a.service': 'someone else', 'b.service': null }, true);
    assert.deepEqual([forced.refused, forced.write.map((f) => f.name)], [[], ['a.service']]);
  });

  test('our file that is no longer wanted is removed; a foreign one is not', () => {
    assert.deepEqual(planInstall(files, known, { 'a.service': null, 'b.service': ours('B') }, false).remove, ['b.service']);
    assert.deepEqual(planInstall(files, known, { 'a.service': null, 'b.service': 'foreign' }, false).remove, []);
  });

  test('uninstall removes only our files', () => {
    assert.deepEqual(planUninstall(known, { 'a.service': ours('A'), 'b.service': 'foreign' }), { remove: ['a.service'], foreign: ['b.service'] });
    assert.deepEqual(planUninstall(known, { 'a.service': null, 'b.service': null }), { remove: [], foreign: [] });
  });
});

/** Records systemctl calls; answers is-active/is-enabled like a real systemctl would for a stopped, enabled unit. */
function fakeRunner(): CommandRunner & { calls: string[][] } {
  const calls: string[][] = [];
  return {
    calls,
    run(file: string, args: readonly string[], _options?: RunOptions) {
      calls.push([file, ...args]);
      const stdout = args[0] === 'is-active' ? 'inactive\n' : args[0] === 'is-enabled' ? 'enabled\n' : '';
      return Promise.resolve({ stdout, stderr: '', exitCode: 0 });
    },
  };
}

describe('systemd backend on a temporary directory', () => {
  const desc: ServiceDescription = { ...LINUX, nodePath: process.execPath };

  test('without a running systemd: writes the units, calls nothing, says what to run', async () => {
    const root = mkdtempSync(join(tmpdir(), `torvm-svc-unit-${process.pid}-`));
    try {
      const runner = fakeRunner();
      const unitDir = join(root, 'units');
      const ctl = createSystemdService({ runner, root: null, unitDir, systemdRunning: () => false });
      const first = await ctl.install(desc, { force: false });
      assert.deepEqual(first.written, [SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT]);
      assert.equal(first.activated, false);
      assert.match(first.note ?? '', /systemd is not the running init/);
      assert.deepEqual(first.nextSteps, [['systemctl', 'daemon-reload'], ['systemctl', 'enable', SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT]]);
      assert.deepEqual(runner.calls, []);
      for (const name of first.written) assert.equal(statSync(join(unitDir, name)).mode & 0o777, 0o644);
      assert.deepEqual(readdirSync(unitDir).sort(), [SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT].sort(), 'no temp files left');

      // autostart turned off: the early-boot unit goes, the daemon unit is rewritten.
      const second = await ctl.install({ ...desc, autostart: false }, { force: false });
      assert.deepEqual([second.written, second.removed], [[SYSTEMD_MAIN_UNIT], [SYSTEMD_EARLY_BOOT_UNIT]]);
      assert.equal(existsSync(join(unitDir, SYSTEMD_EARLY_BOOT_UNIT)), false);
      const status = await ctl.status({ ...desc, autostart: false });
      assert.deepEqual(status.units.map((u) => [u.name, u.installed, u.current, u.active]), [[SYSTEMD_EARLY_BOOT_UNIT, false, null, null], [SYSTEMD_MAIN_UNIT, true, true, null]]);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('with systemd running: daemon-reload and enable after writing; disable before removing', async () => {
    const root = mkdtempSync(join(tmpdir(), `torvm-svc-unit-${process.pid}-`));
    try {
      const runner = fakeRunner();
      const unitDir = join(root, 'units');
      const ctl = createSystemdService({ runner, root: null, unitDir, systemdRunning: () => true });
      const r = await ctl.install(desc, { force: false });
      assert.equal(r.activated, true);
      assert.deepEqual(runner.calls, [['systemctl', 'daemon-reload'], ['systemctl', 'enable', SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT]]);
      const status = await ctl.status(desc);
      assert.deepEqual(status.units.map((u) => [u.enabled, u.active]), [[true, 'inactive'], [true, 'inactive']]);
      runner.calls.length = 0;
      const u = await ctl.uninstall();
      assert.deepEqual(u.removed, [SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT]);
      assert.deepEqual(runner.calls, [['systemctl', 'disable', SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT], ['systemctl', 'daemon-reload']]);
      assert.deepEqual(readdirSync(unitDir), []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('uninstall under --root also removes enable links and leaves foreign files', async () => {
    const root = mkdtempSync(join(tmpdir(), `torvm-svc-unit-${process.pid}-`));
    try {
      const ctl = createSystemdService({ runner: fakeRunner(), root, systemdRunning: () => true });
      const r = await ctl.install({ ...desc, autostart: false }, { force: false });
      assert.equal(r.activated, false, '--root never calls systemctl');
      const wants = join(r.dir, 'multi-user.target.wants');
      mkdirSync(wants);
      symlinkSync(join('..', SYSTEMD_MAIN_UNIT), join(wants, SYSTEMD_MAIN_UNIT));
      writeFileSync(join(r.dir, SYSTEMD_EARLY_BOOT_UNIT), '# a unit of the admin\n');
      assert.equal((await ctl.status({ ...desc, autostart: false })).units[1]?.enabled, true);
      const u = await ctl.uninstall();
      assert.deepEqual([u.removed, u.foreign], [[SYSTEMD_MAIN_UNIT], [SYSTEMD_EARLY_BOOT_UNIT]]);
      assert.deepEqual(readdirSync(wants), []);
      assert.equal(readFileSync(join(r.dir, SYSTEMD_EARLY_BOOT_UNIT), 'utf8'), '# a unit of the admin\n');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

/** systemd-analyze ships with the systemd package; installing it does not make systemd the init of a running machine. */
const analyze = spawnSync('systemd-analyze', ['--version'], { timeout: 10_000 });
const haveAnalyze = analyze.status === 0;

test('systemd-analyze verify accepts the rendered units without a warning', { skip: !haveAnalyze && !process.env.CI ? 'systemd-analyze is not installed' : false }, () => {
  assert.ok(haveAnalyze, 'systemd-analyze is missing (apt-get install systemd)');
  const dir = mkdtempSync(join(tmpdir(), `torvm-svc-verify-${process.pid}-`));
  try {
    // Real, executable paths: verify checks that ExecStart exists.
    const cliEntry = fileURLToPath(new URL('../../bin/torvm.js', import.meta.url));
    for (const autostart of [true, false]) {
      const names = renderSystemdUnits({ ...LINUX, nodePath: process.execPath, cliEntry, configPath: null, autostart }).map((f) => {
        writeFileSync(join(dir, f.name), f.content);
        return join(dir, f.name);
      });
      const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names], { encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, r.stderr);
      // verify exits 0 on settings it ignores; any output is such a warning.
      assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'systemd-analyze printed warnings');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
