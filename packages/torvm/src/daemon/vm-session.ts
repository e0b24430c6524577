/**
 * Everything one VM boot needs, prepared by the daemon: the per-boot control
 * password, the torrc, the guest settings and an entropy seed (all passed by
 * fw_cfg, never on the kernel command line), and the QEMU supervisor.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import type { TorvmConfig } from '../core/config.ts';
import { GUEST, type GuestArch } from '../core/guest.ts';
import { renderGuestSettings } from '../core/guest-config.ts';
import { renderKernelCmdline } from '../core/kernel-cmdline.ts';
import { HOST_TAP_MAC, VM_LAN_MAC, VM_WAN_MAC } from '../core/policy.ts';
import { renderTorrc } from '../core/torrc.ts';
import { builtinBridgeLines, usesTransportPlugin } from '../core/builtin-bridges.ts';
import { generateControlPassword, hashControlPassword } from '../tor/hashed-password.ts';
import type { VerifiedImage } from '../vm/image-manifest.ts';
import type { HostOs, QemuAccel } from '../vm/qemu-args.ts';
import { QemuSupervisor, type QemuSupervisorOptions } from '../vm/qemu-supervisor.ts';
import { vmPaths } from '../vm/vm-paths.ts';

export interface VmSessionOptions {
  config: TorvmConfig;
  image: VerifiedImage;
  qemuBinary: string;
  qemuFeatures: { runWith: boolean };
  accel: QemuAccel;
  hostOs: HostOs;
  inspector: QemuSupervisorOptions['inspector'];
  /** Sockets, pidfile and per-boot files (tmpfs on Linux: /run/torvm). */
  runDir: string;
  /** The unprivileged user QEMU drops to. */
  runAs: string | undefined;
  log: QemuSupervisorOptions['log'];
  /** Tests only: QEMU in this network namespace. */
  netns?: string;
}

export interface VmSession {
  supervisor: QemuSupervisor;
  /** This boot's control password; also kept (0600) in runDir so a restarted controller can adopt the VM. */
  controlPassword: string;
  /** Deletes the per-boot secrets once the VM is gone, so the next boot gets a new password. */
  discardBootFiles(): void;
}

const PASSWORD_FILE = 'control-password';

/**
 * Writes the per-boot files and builds the supervisor (not started). If a
 * previous controller's password file exists, it is reused, so that an adopted
 * VM's Tor still accepts us.
 */
export function prepareVmSession(o: VmSessionOptions): VmSession {
  mkdirSync(o.runDir, { recursive: true, mode: 0o700 });
  const paths = vmPaths(o.config.vm.stateDir, o.runDir);
  const passwordFile = `${o.runDir}/${PASSWORD_FILE}`;
  const controlPassword = existsSync(passwordFile) ? readFileSync(passwordFile, 'utf8').trim() : generateControlPassword();
  writeFileSync(passwordFile, controlPassword, { mode: 0o600 });

  const torrcPath = `${o.runDir}/torrc`;
  const settingsPath = `${o.runDir}/guest.env`;
  const seedPath = `${o.runDir}/seed`;
  // QEMU reads fw_cfg files while it is still root, before -runas: 0600 root is enough.
  writeFileSync(torrcPath, renderTorrc(o.config, { hashedControlPassword: hashControlPassword(controlPassword), sandbox: !usesTransportPlugin(o.config.tor.bridges), builtinBridges: builtinBridgeLines() }), { mode: 0o600 });
  writeFileSync(settingsPath, renderGuestSettings(o.config, { wanMac: VM_WAN_MAC, lanMac: VM_LAN_MAC, hostMac: HOST_TAP_MAC }), { mode: 0o600 });
  writeFileSync(seedPath, randomBytes(64), { mode: 0o600 });

  const arch: GuestArch = o.image.manifest.arch;
  const supervisor = new QemuSupervisor({
    qemuBinary: o.qemuBinary,
    hostOs: o.hostOs,
    inspector: o.inspector,
    stderrLogPath: paths.stderrLogPath,
    log: o.log,
    ...(o.netns ? { netns: o.netns } : {}),
    spec: {
      arch,
      accel: o.accel,
      memoryMiB: o.config.vm.memoryMiB,
      cpus: o.config.vm.cpus,
      kernelPath: o.image.kernelPath,
      // The small initramfs plus the read-only system disk: ~25 MB less guest RAM,
      // and the layout in which the image test proves Tor's seccomp sandbox.
      initrdPath: o.image.initramfsSmallPath,
      systemDisk: { path: o.image.systemDiskPath, serial: o.image.manifest.systemDiskSerial },
      kernelCmdline: renderKernelCmdline(o.config.vm.kernelParams, arch),
      stateDiskPath: paths.stateDiskPath,
      lan: o.hostOs === 'darwin' ? { kind: 'vmnet-host' } : { kind: 'tap', ifname: o.config.network.tapName },
      lanMac: VM_LAN_MAC,
      wanMac: VM_WAN_MAC,
      wan: { restrict: false },
      fwCfg: [
        { name: GUEST.fwCfg.torrc, file: torrcPath },
        { name: GUEST.fwCfg.guestConfig, file: settingsPath },
        { name: GUEST.fwCfg.entropySeed, file: seedPath },
      ],
      qmpSocketPath: paths.qmpSocketPath,
      serialSocketPath: paths.serialSocketPath,
      serialLogPath: paths.serialLogPath,
      pidFilePath: paths.pidFilePath,
      ...(o.runAs ? { runAs: o.runAs } : {}),
      sandbox: true,
      qemuFeatures: o.qemuFeatures,
    },
  });
  const discardBootFiles = () => {
    for (const f of [passwordFile, torrcPath, settingsPath, seedPath]) rmSync(f, { force: true });
  };
  return { supervisor, controlPassword, discardBootFiles };
}
