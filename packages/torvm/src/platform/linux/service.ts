/**
 * `torvm service` on Linux: systemd units under /etc/systemd/system (or under
 * --root DIR for tests and packagers).
 *
 *   install     plan (install-plan.ts) -> refuse foreign files -> write 0644 root:root
 *               atomically -> remove our stale units -> daemon-reload + enable,
 *               but only when systemd is the running init and no --root was given
 *   uninstall   disable -> remove exactly the files carrying our marker -> daemon-reload
 *   status      files, `.wants/` links, and `systemctl is-active` when systemd runs
 *
 * It never starts or stops a unit: starting is the user's call, and stopping
 * the daemon is `torvm down` (the kill switch has its own rules).
 */
import { existsSync, lstatSync } from 'node:fs';
import { chown, mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TorvmError } from '../../core/errors.ts';
import { planInstall, planUninstall, type ExistingFiles } from '../../service/install-plan.ts';
import type { ServiceControl, ServiceInstallResult, ServiceStatusReport, ServiceUninstallResult } from '../../service/service-control.ts';
import { hasServiceMarker, type ServiceFile } from '../../service/service-description.ts';
import { renderSystemdUnits, SYSTEMD_UNIT_NAMES, SYSTEMD_WANTED_BY } from '../../service/systemd-units.ts';
import type { CommandRunner } from '../exec.ts';

export const SYSTEMD_UNIT_DIR = '/etc/systemd/system';
const SYSTEMCTL_TIMEOUT_MS = 30_000;

/** systemd's own test for "systemd is PID 1 here" (sd_booted). */
export const systemdIsRunning = (): boolean => existsSync('/run/systemd/system');

/** Reads each known file of a service directory; null when missing. */
export async function readServiceDir(dir: string, names: readonly string[]): Promise<ExistingFiles> {
  const existing: Record<string, string | null> = {};
  for (const name of names) {
    try {
      existing[name] = await readFile(join(dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new TorvmError('ERR_COMMAND_FAILED', `cannot read ${join(dir, name)}`, { cause: err });
      existing[name] = null;
    }
  }
  return existing;
}

/** Writes a file atomically (temp file, then rename) with its mode, root-owned when we are root. */
export async function writeServiceFile(dir: string, file: ServiceFile): Promise<void> {
  const target = join(dir, file.name);
  const temp = join(dir, `.${file.name}.torvm-${process.pid}.tmp`);
  try {
    await writeFile(temp, file.content, { mode: file.mode, flag: 'wx' });
    if (process.getuid?.() === 0) await chown(temp, 0, 0);
    await rename(temp, target);
  } catch (err) {
    await unlink(temp).catch(() => undefined);
    throw new TorvmError('ERR_COMMAND_FAILED', `cannot write ${target}`, { cause: err });
  }
}

export interface SystemdServiceOptions {
  runner: CommandRunner;
  /** Write under this directory instead of /; the service manager is then never called. */
  root: string | null;
  unitDir?: string;
  /** Injected for tests; default: /run/systemd/system exists. */
  systemdRunning?: () => boolean;
}

export function createSystemdService(o: SystemdServiceOptions): ServiceControl {
  const dir = o.root === null ? (o.unitDir ?? SYSTEMD_UNIT_DIR) : join(o.root, o.unitDir ?? SYSTEMD_UNIT_DIR);
  const systemctl = (args: string[], okExitCodes: number[] = []) => o.runner.run('systemctl', args, { timeoutMs: SYSTEMCTL_TIMEOUT_MS, okExitCodes });
  /** Why the manager is not called, or null when it is. */
  const inactiveReason = (): string | null => {
    if (o.root !== null) return `--root was given: the files live under ${o.root}, and systemd was not told`;
    if (!(o.systemdRunning ?? systemdIsRunning)()) return 'systemd is not the running init here (/run/systemd/system is missing): the units are written but not enabled';
    return null;
  };
  const enabledLink = (name: (typeof SYSTEMD_UNIT_NAMES)[number]) => join(dir, `${SYSTEMD_WANTED_BY[name]}.wants`, name);

  return {
    manager: 'systemd',

    async install(description, { force }): Promise<ServiceInstallResult> {
      const wanted = renderSystemdUnits(description);
      const existing = await readServiceDir(dir, SYSTEMD_UNIT_NAMES);
      const plan = planInstall(wanted, SYSTEMD_UNIT_NAMES, existing, force);
      if (plan.refused.length > 0) {
        throw new TorvmError('ERR_USAGE', `refusing to overwrite ${plan.refused.map((n) => join(dir, n)).join(', ')}: TorVM did not write ${plan.refused.length === 1 ? 'it' : 'them'}`, {
          hint: 'move it away, or run again with --force to replace it', details: { refused: plan.refused, dir },
        });
      }
      const note = inactiveReason();
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (const file of plan.write) await writeServiceFile(dir, file);
      if (note === null && plan.remove.length > 0) await systemctl(['disable', ...plan.remove]);
      for (const name of plan.remove) await unlink(join(dir, name));
      const enable = wanted.map((f) => f.name);
      const steps = [['systemctl', 'daemon-reload'], ['systemctl', 'enable', ...enable]];
      if (note === null) for (const [, ...args] of steps) await systemctl(args);
      return {
        manager: 'systemd', dir, written: plan.write.map((f) => f.name), unchanged: [...plan.unchanged], removed: [...plan.remove],
        activated: note === null, nextSteps: note === null ? [] : steps, note,
      };
    },

    async uninstall(): Promise<ServiceUninstallResult> {
      const plan = planUninstall(SYSTEMD_UNIT_NAMES, await readServiceDir(dir, SYSTEMD_UNIT_NAMES));
      const note = inactiveReason();
      if (note === null && plan.remove.length > 0) await systemctl(['disable', ...plan.remove]);
      for (const name of plan.remove) await unlink(join(dir, name));
      if (note === null && plan.remove.length > 0) await systemctl(['daemon-reload']);
      // Links `systemctl enable` made under --root (a packager's tree) are ours to remove too.
      for (const name of SYSTEMD_UNIT_NAMES) {
        if (!plan.remove.includes(name)) continue;
        const link = enabledLink(name);
        if (isSymlink(link)) await unlink(link);
      }
      return {
        manager: 'systemd', dir, removed: [...plan.remove], foreign: [...plan.foreign], activated: note === null,
        nextSteps: note === null || plan.remove.length === 0 ? [] : [['systemctl', 'disable', ...plan.remove], ['systemctl', 'daemon-reload']], note,
      };
    },

    async status(description): Promise<ServiceStatusReport> {
      const existing = await readServiceDir(dir, SYSTEMD_UNIT_NAMES);
      const wanted = new Map(renderSystemdUnits(description).map((f) => [f.name, f.content]));
      const running = inactiveReason() === null;
      const units = [];
      for (const name of SYSTEMD_UNIT_NAMES) {
        const content = existing[name] ?? null;
        let active: string | null = null;
        let enabled: boolean | null = isSymlink(enabledLink(name));
        if (running) {
          active = (await systemctl(['is-active', name], [1, 2, 3, 4])).stdout.trim() || null;
          enabled = (await systemctl(['is-enabled', name], [1, 2, 3, 4])).stdout.trim() === 'enabled';
        }
        units.push({
          name, installed: content !== null, ours: content !== null && hasServiceMarker(content),
          current: content === null ? null : wanted.has(name) ? wanted.get(name) === content : false, enabled, active,
        });
      }
      return { manager: 'systemd', dir, managerRunning: running, units };
    },
  };
}

function isSymlink(path: string): boolean {
  try {
    return lstatSync(path).isSymbolicLink();
  } catch {
    return false;
  }
}
