/**
 * `torvm service` on Windows: a FAKE that only renders the sc.exe argv
 * (service/sc-exe.ts) and tells the user. Nothing is registered: the Windows
 * host-network backend (WFP) is not written yet, so a Windows service would
 * have no kill switch to start. Never run on a real Windows machine.
 */
import { TorvmError } from '../../core/errors.ts';
import { renderScCommands } from '../../service/sc-exe.ts';
import type { ServiceControl } from '../../service/service-control.ts';

const notYet = (commands: string[][]) => new TorvmError('ERR_NOT_AVAILABLE', 'installing TorVM as a Windows service is not available yet (no Windows kill switch)', {
  hint: `the registration would be: ${commands.map((c) => c.join(' ')).join(' && ')}`, details: { argv: commands },
});

export function createScService(): ServiceControl {
  return {
    manager: 'sc.exe',
    install(description) { return Promise.reject(notYet(renderScCommands(description).install)); },
    uninstall() { return Promise.reject(notYet([['sc.exe', 'delete', 'TorVM']])); },
    status(description) { return Promise.reject(notYet(renderScCommands(description).status)); },
  };
}
