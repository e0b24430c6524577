/**
 * Windows service registration as sc.exe argv (PURE, rendering only). Nothing
 * runs these here: the Windows host-network backend (WFP) is not written yet,
 * so a Windows install would have no kill switch to start.
 *
 * sc.exe parses `name= value` pairs: the `name=` and its value are separate
 * argv entries, and binPath is one string with its own quoting.
 */
import { TorvmError } from '../core/errors.ts';
import type { ServiceDescription } from './service-description.ts';

export const WINDOWS_SERVICE_NAME = 'TorVM';

const WINDOWS_PATH = /^[A-Za-z]:\\[^"%\u0000-\u001f<>|?*]*$/;

function checkWindowsPath(field: string, value: string): void {
  if (!WINDOWS_PATH.test(value) || value.length > 260) {
    throw new TorvmError('ERR_UNSAFE_VALUE', `service ${field} must be an absolute Windows path (C:\\...) without quotes, %, <, >, | or wildcards`, { details: { field, value } });
  }
}

const quoted = (s: string) => `"${s}"`;

export interface ScCommands {
  install: string[][];
  uninstall: string[][];
  status: string[][];
}

export function renderScCommands(d: ServiceDescription): ScCommands {
  checkWindowsPath('nodePath', d.nodePath);
  checkWindowsPath('cliEntry', d.cliEntry);
  if (d.configPath !== null) checkWindowsPath('configPath', d.configPath);
  const binPath = [quoted(d.nodePath), quoted(d.cliEntry), '--headless', ...(d.configPath === null ? [] : ['--config', quoted(d.configPath)])].join(' ');
  return {
    install: [
      ['sc.exe', 'create', WINDOWS_SERVICE_NAME, 'binPath=', binPath, 'start=', d.autostart ? 'auto' : 'demand', 'obj=', 'LocalSystem', 'DisplayName=', 'TorVM'],
      ['sc.exe', 'description', WINDOWS_SERVICE_NAME, 'Sends all TCP and DNS of this computer through Tor in a VM, fail-closed.'],
      // Restart after a crash, three times, 5 s apart (as systemd's Restart=on-failure).
      ['sc.exe', 'failure', WINDOWS_SERVICE_NAME, 'reset=', '300', 'actions=', 'restart/5000/restart/5000/restart/5000'],
    ],
    uninstall: [
      ['sc.exe', 'delete', WINDOWS_SERVICE_NAME],
    ],
    status: [
      ['sc.exe', 'query', WINDOWS_SERVICE_NAME],
      ['sc.exe', 'qc', WINDOWS_SERVICE_NAME],
    ],
  };
}
