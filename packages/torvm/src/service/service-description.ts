/**
 * What a system service of TorVM runs, as a small typed description (PURE).
 * Every OS renders its own files from it (systemd units, a launchd plist,
 * sc.exe argv); nothing here touches the machine.
 */
import { TorvmError } from '../core/errors.ts';
import { checkAbsolutePath } from '../core/validators.ts';

export interface ServiceDescription {
  /** Absolute path of the node binary that runs the CLI. */
  readonly nodePath: string;
  /** Absolute path of the CLI entry (packages/torvm/bin/torvm.js). */
  readonly cliEntry: string;
  /** The config file the service reads; null: the CLI's default (/etc/torvm/config.json or built-in defaults). */
  readonly configPath: string | null;
  /** The account the daemon runs as. It drops to the VM user itself (QEMU -runas), so this is root. */
  readonly user: string;
  readonly group: string;
  /** config.service.autostart: start protecting at boot, and block the network from early boot until then. */
  readonly autostart: boolean;
  /** config.network.lockdown: the network stays blocked whenever TorVM is not protecting, so from early boot too. */
  readonly lockdown: boolean;
}

/** Whether the network must be blocked from early boot: when TorVM starts at boot, and in lockdown. */
export function blocksFromEarlyBoot(d: ServiceDescription): boolean {
  return d.autostart || d.lockdown;
}

/** One file a service install writes. */
export interface ServiceFile {
  /** The file name inside the service directory, e.g. `torvm.service`. */
  readonly name: string;
  readonly content: string;
  readonly mode: number;
}

/**
 * Carried by every file `torvm service install` writes. Install refuses to
 * overwrite a file without it (unless --force); uninstall removes only files with it.
 */
export const SERVICE_MARKER = 'Written by `torvm service install`; `torvm service uninstall` removes it. Do not edit: reinstall instead.';

export function hasServiceMarker(content: string): boolean {
  return content.includes(SERVICE_MARKER);
}

const ACCOUNT = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Refuses values that could escape their field in any rendering: paths must
 * pass checkAbsolutePath, and must not hold `%` or `$` (systemd expands both
 * in ExecStart) or XML/`&` specials (launchd).
 */
export function validateServiceDescription(d: ServiceDescription): void {
  const paths: Array<[string, string | null]> = [['nodePath', d.nodePath], ['cliEntry', d.cliEntry], ['configPath', d.configPath]];
  for (const [field, value] of paths) {
    if (value === null) continue;
    const problem = checkAbsolutePath(value) ?? (/[%$&<>;]/.test(value) ? 'must not contain %, $, &, <, > or ;' : null);
    if (problem) throw new TorvmError('ERR_UNSAFE_VALUE', `service ${field} ${problem}`, { details: { field, value } });
  }
  for (const [field, value] of [['user', d.user], ['group', d.group]] as const) {
    if (!ACCOUNT.test(value)) throw new TorvmError('ERR_UNSAFE_VALUE', `service ${field} must be a plain account name`, { details: { field, value } });
  }
}

/** The CLI argv (after node) of the service's main process: the daemon in service mode, without a browser. */
export function daemonArgv(d: ServiceDescription): string[] {
  return [d.cliEntry, '--headless', ...(d.configPath === null ? [] : ['--config', d.configPath])];
}

/** The CLI argv (after node) of the early-boot blocker: the kill switch, fully blocked. */
export function earlyBlockArgv(d: ServiceDescription): string[] {
  return [d.cliEntry, ...(d.configPath === null ? [] : ['--config', d.configPath]), 'killswitch', 'engage', '--state', 'blocked'];
}
