/**
 * `torvm service install|uninstall|status`: TorVM as a system service.
 * The lead registers it in cli/main.ts with
 *   registerServiceCommands(program, io, run);
 */
import type { Command } from 'commander';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TorvmError } from '../../core/errors.ts';
import { createCommandRunner } from '../../platform/exec.ts';
import { createServiceControl } from '../../platform/index.ts';
import type { ServiceInstallResult, ServiceStatusReport, ServiceUninstallResult } from '../../service/service-control.ts';
import { blocksFromEarlyBoot, type ServiceDescription } from '../../service/service-description.ts';
import { effectiveConfig, type CliIo, type GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

interface ServiceFlags extends GlobalOptions {
  root?: string;
  force?: boolean;
}

/** The CLI entry a service runs: this checkout's (or installation's) bin/torvm.js. */
const CLI_ENTRY = fileURLToPath(new URL('../../../bin/torvm.js', import.meta.url));

function rootFlag(flags: ServiceFlags): string | null {
  if (flags.root === undefined) return null;
  if (flags.root === '' || !isAbsolute(flags.root)) {
    throw new TorvmError('ERR_USAGE', `--root must be an absolute directory, got "${flags.root}"`, { hint: 'e.g. --root /tmp/pkgroot' });
  }
  return flags.root;
}

async function describeService(flags: ServiceFlags): Promise<ServiceDescription> {
  const { config } = await effectiveConfig(flags);
  return {
    nodePath: process.execPath,
    cliEntry: CLI_ENTRY,
    // The service reads the file given now; without --config, the CLI's own default at each start.
    configPath: flags.config === undefined ? null : resolve(flags.config),
    user: 'root',
    group: 'root',
    autostart: config.service.autostart,
    lockdown: config.network.lockdown,
  };
}

/** Writing to the real system needs root; a `--root DIR` tree (tests, packagers) does not. */
function requireRootUnlessUnderRoot(flags: ServiceFlags, verb: 'installing' | 'removing'): void {
  if (flags.root === undefined && process.getuid?.() !== 0) {
    throw new TorvmError('ERR_NOT_ROOT', `${verb} a system service needs root`, { hint: 'run it with sudo, or work under a directory with --root DIR' });
  }
}

const argvLine = (argv: string[]) => argv.join(' ');

function installText(r: ServiceInstallResult, description: ServiceDescription): string {
  const lines = [
    ...r.written.map((n) => `wrote     ${r.dir}/${n}`),
    ...r.unchanged.map((n) => `unchanged ${r.dir}/${n}`),
    ...r.removed.map((n) => `removed   ${r.dir}/${n} (no longer wanted)`),
    blocksFromEarlyBoot(description)
      ? `${description.lockdown ? 'lockdown' : 'autostart'} is on: at boot the network is blocked before any interface is up, until TorVM runs`
      : 'autostart and lockdown are off: the daemon starts at boot but protects only when started (set service.autostart to block from early boot)',
  ];
  if (r.activated) lines.push(`${r.manager} reloaded; enabled. Start it now with: systemctl start torvm.service`);
  if (r.note) lines.push(`note: ${r.note}`, ...r.nextSteps.map((s) => `  run: ${argvLine(s)}`));
  return lines.join('\n');
}

function uninstallText(r: ServiceUninstallResult): string {
  const lines = [
    ...(r.removed.length === 0 ? ['nothing to remove: no TorVM service files'] : r.removed.map((n) => `removed   ${r.dir}/${n}`)),
    ...r.foreign.map((n) => `left      ${r.dir}/${n} (TorVM did not write it)`),
  ];
  if (r.note && r.nextSteps.length > 0) lines.push(`note: ${r.note}`, ...r.nextSteps.map((s) => `  run: ${argvLine(s)}`));
  lines.push('a running daemon keeps running, and the kill switch keeps its state: stop with `torvm down`');
  return lines.join('\n');
}

function statusText(r: ServiceStatusReport): string {
  const yn = (v: boolean | null) => (v === null ? 'unknown' : v ? 'yes' : 'no');
  const lines = [`${r.manager} (${r.dir})${r.managerRunning ? '' : `: ${r.manager} is not running here, so "active" is unknown`}`];
  for (const u of r.units) {
    if (!u.installed) lines.push(`${u.name}: not installed`);
    else lines.push(`${u.name}: installed${u.ours ? '' : ' (NOT written by TorVM)'}${u.current === false ? ' (outdated: run `torvm service install`)' : ''}, enabled: ${yn(u.enabled)}, active: ${u.active ?? 'unknown'}`);
  }
  return lines.join('\n');
}

export function registerServiceCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const service = program.command('service').description('install TorVM as a system service (systemd), remove it, or show its state');
  const control = (flags: ServiceFlags) => createServiceControl({ runner: createCommandRunner(flags.verbose ? (l) => io.err(l) : undefined), root: rootFlag(flags) });

  service.command('install')
    .description('write the service units (and, with service.autostart, the early-boot blocker) and enable them when systemd runs')
    .option('--root <dir>', 'write under this directory instead of / (packagers, tests); never calls systemctl')
    .option('--force', 'replace unit files that TorVM did not write')
    .action(run(async (opts) => {
      const flags = opts as ServiceFlags;
      const ctl = control(flags);
      requireRootUnlessUnderRoot(flags, 'installing');
      const description = await describeService(flags);
      const result = await ctl.install(description, { force: flags.force ?? false });
      io.out(flags.json ? JSON.stringify({ ok: true, ...result }, null, 2) : installText(result, description));
      return 0;
    }));

  service.command('uninstall')
    .description('remove exactly the service files `torvm service install` wrote')
    .option('--root <dir>', 'remove under this directory instead of /')
    .action(run(async (opts) => {
      const flags = opts as ServiceFlags;
      const ctl = control(flags);
      requireRootUnlessUnderRoot(flags, 'removing');
      const result = await ctl.uninstall();
      io.out(flags.json ? JSON.stringify({ ok: true, ...result }, null, 2) : uninstallText(result));
      return 0;
    }));

  service.command('status')
    .description('show whether the service is installed, enabled and active, as far as this machine can tell')
    .option('--root <dir>', 'look under this directory instead of /')
    .action(run(async (opts) => {
      const flags = opts as ServiceFlags;
      const result = await control(flags).status(await describeService(flags));
      io.out(flags.json ? JSON.stringify({ ok: true, ...result }, null, 2) : statusText(result));
      return 0;
    }));
}
