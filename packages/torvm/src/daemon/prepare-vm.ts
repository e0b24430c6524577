/** CheckPrivileges: everything that must hold before TorVM touches the host, and the VM it will boot. */
import type { TorvmConfig } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import type { PlatformServices } from '../platform/index.ts';
import { selectAccel } from '../vm/accel.ts';
import { readVerifiedImage } from '../vm/image-manifest.ts';
import { ensureStateDisk } from '../vm/state-disk.ts';
import { vmPaths } from '../vm/vm-paths.ts';
import { prepareVmSession } from './vm-session.ts';
import type { VmHandle } from './works.ts';
import type { QemuSupervisorOptions } from '../vm/qemu-supervisor.ts';
import { mkdirSync } from 'node:fs';

export async function checkPrivilegesAndPrepareVm(
  config: TorvmConfig,
  platform: PlatformServices,
  vmUser: { name: string },
  log: { warn(msg: string): void; info(msg: string): void },
  supervisorLog: QemuSupervisorOptions['log'],
  signal: AbortSignal,
): Promise<VmHandle> {
  if (!platform.isPrivileged()) throw new TorvmError('ERR_NOT_ROOT', 'TorVM needs root to change host networking', { hint: 'run `sudo torvm up`' });
  // 1. The image, checked against its manifest before anything boots it.
  const image = await readVerifiedImage(config.vm.imageDir);
  // 2. QEMU: allowlisted, root-owned, recent enough.
  const qemu = await platform.checkQemu(config.vm.qemuBinary);
  // 3. The accelerator, really probed; TCG when the hardware one does not work.
  const accel = await selectAccel(config.vm.accel, platform.accelProbe(qemu.path), (m) => log.warn(m), signal);
  // 4. The persistent state disk (formatted on the host only when blank).
  mkdirSync(config.vm.stateDir, { recursive: true, mode: 0o700 });
  const status = await ensureStateDisk(vmPaths(config.vm.stateDir, platform.runDir).stateDiskPath, (m) => log.warn(m), platform.stateDiskFormatter);
  log.info(`state disk: ${status}; accelerator: ${accel}; QEMU ${qemu.path}`);
  const session = prepareVmSession({
    config, image, qemuBinary: qemu.path, qemuFeatures: qemu.features, accel, hostOs: platform.os, inspector: platform.processInspector,
    runDir: platform.runDir, runAs: vmUser.name, log: supervisorLog,
  });
  return { ...session, accel };
}
