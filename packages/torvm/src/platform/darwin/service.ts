/**
 * `torvm service` on macOS: a launchd daemon plist in /Library/LaunchDaemons
 * (or under --root DIR).
 *
 * A FAKE that cannot run here: it writes and removes the plist, but never
 * calls launchctl, and it has never met a real launchd. It prints the
 * launchctl commands instead. The macOS host-network backend (pf) is not
 * written yet, so a real macOS service would have no kill switch to start.
 */
import { unlink, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { TorvmError } from '../../core/errors.ts';
import { planInstall, planUninstall } from '../../service/install-plan.ts';
import { LAUNCHD_LABEL, LAUNCHD_PLIST, renderLaunchdPlist } from '../../service/launchd-plist.ts';
import type { ServiceControl } from '../../service/service-control.ts';
import { hasServiceMarker } from '../../service/service-description.ts';
// Plain POSIX file handling, shared with the systemd backend.
import { readServiceDir, writeServiceFile } from '../linux/service.ts';

export const LAUNCHD_DAEMON_DIR = '/Library/LaunchDaemons';
const NOTE = 'the macOS service backend is not finished: launchctl was not called (run the commands below yourself)';

export function createLaunchdService(o: { root: string | null }): ServiceControl {
  const dir = o.root === null ? LAUNCHD_DAEMON_DIR : join(o.root, LAUNCHD_DAEMON_DIR);
  const plistPath = join(LAUNCHD_DAEMON_DIR, LAUNCHD_PLIST);
  return {
    manager: 'launchd',
    async install(description, { force }) {
      const plist = renderLaunchdPlist(description);
      const plan = planInstall([plist], [LAUNCHD_PLIST], await readServiceDir(dir, [LAUNCHD_PLIST]), force);
      if (plan.refused.length > 0) throw new TorvmError('ERR_USAGE', `refusing to overwrite ${join(dir, LAUNCHD_PLIST)}: TorVM did not write it`, { hint: 'move it away, or run again with --force' });
      await mkdir(dir, { recursive: true, mode: 0o755 });
      for (const file of plan.write) await writeServiceFile(dir, file);
      return {
        manager: 'launchd', dir, written: plan.write.map((f) => f.name), unchanged: [...plan.unchanged], removed: [], activated: false,
        nextSteps: [['launchctl', 'bootstrap', 'system', plistPath]], note: NOTE,
      };
    },
    async uninstall() {
      const plan = planUninstall([LAUNCHD_PLIST], await readServiceDir(dir, [LAUNCHD_PLIST]));
      for (const name of plan.remove) await unlink(join(dir, name));
      return {
        manager: 'launchd', dir, removed: [...plan.remove], foreign: [...plan.foreign], activated: false,
        nextSteps: [['launchctl', 'bootout', `system/${LAUNCHD_LABEL}`]], note: NOTE,
      };
    },
    async status(description) {
      const content = (await readServiceDir(dir, [LAUNCHD_PLIST]))[LAUNCHD_PLIST] ?? null;
      return {
        manager: 'launchd', dir, managerRunning: false,
        units: [{
          name: LAUNCHD_PLIST, installed: content !== null, ours: content !== null && hasServiceMarker(content),
          current: content === null ? null : content === renderLaunchdPlist(description).content, enabled: null, active: null,
        }],
      };
    },
  };
}
