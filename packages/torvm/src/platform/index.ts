/**
 * The one place that reads process.platform. Everything else receives what
 * it needs from here.
 */
import { dirname } from 'node:path';
import type { PlatformDefaults, TorvmConfig } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import type { PolicyState } from '../core/policy.ts';
import type { CommandRunner } from './exec.ts';
import type { FirewallStatus, HostNetworkLifecycle } from './host-network.ts';
import { createLinuxHostNetwork } from './linux/host-network.ts';
import { ensureSystemGroup, ensureSystemUser } from './linux/system-user.ts';
import { checkQemuBinary } from './linux/qemu-binary.ts';
import { createLinuxAccelProbe } from './linux/accel.ts';
import { linuxProcessInspector } from './linux/process-inspector.ts';
import type { ProcessInspector } from '../vm/process-inspector.ts';
import type { AccelProbe } from '../vm/accel.ts';
import { mkfsExt4Formatter, type StateDiskFormatter } from '../vm/state-disk.ts';

import { linuxDefaults } from './linux/defaults.ts';
import { darwinDefaults } from './darwin/defaults.ts';
import { win32Defaults } from './win32/defaults.ts';

export type HostOs = 'linux' | 'darwin' | 'win32';

export function currentOs(): HostOs {
  const p = process.platform;
  if (p === 'linux' || p === 'darwin' || p === 'win32') return p;
  throw new Error(`TorVM does not support ${p}`);
}

export function platformDefaults(os: HostOs = currentOs()): PlatformDefaults {
  return { linux: linuxDefaults, darwin: darwinDefaults, win32: win32Defaults }[os];
}

/** Identity checks on pids (is this still our QEMU?) for this OS. */
export function processInspector(os: HostOs = currentOs()): ProcessInspector {
  if (os !== 'linux') throw new TorvmError('ERR_NOT_AVAILABLE', `process inspection for ${os} is not written yet`);
  return linuxProcessInspector;
}

/** The host-networking verbs the CLI and the daemon use, whatever the OS. */
export interface HostNetworkControl {
  engageKillSwitch(state?: PolicyState): Promise<void>;
  releaseKillSwitch(): Promise<void>;
  killSwitchStatus(): Promise<FirewallStatus>;
  /** Undo a crashed run from its journal; false when there was nothing to undo. */
  restore(): Promise<boolean>;
}

/**
 * Host networking for this OS. Linux is real; the macOS (pf) and Windows (WFP)
 * backends are not written yet, and say so instead of pretending.
 */
export async function createHostNetworkControl(config: TorvmConfig, runner: CommandRunner, log: (line: string) => void, os: HostOs = currentOs()): Promise<HostNetworkControl> {
  if (os !== 'linux') throw new TorvmError('ERR_NOT_AVAILABLE', `host networking for ${os} is not written yet`);
  const user = await ensureSystemUser(runner);
  return createLinuxHostNetwork({
    runner, log, stateDir: config.vm.stateDir, network: { ...config.network, lanGateway: config.lanGateway }, torvmUid: user.uid, torvmGid: user.gid,
  });
}

/** What the daemon needs from the OS, behind one small object. */
export interface PlatformServices {
  os: HostOs;
  /** Sockets, pidfile and per-boot secrets; a tmpfs cleared at boot where the OS has one. */
  runDir: string;
  isPrivileged(): boolean;
  /** The vetted QEMU binary (allowlisted, root-owned, version ≥ 7.2). */
  checkQemu(path: string): Promise<{ path: string; features: { runWith: boolean } }>;
  accelProbe(qemuBinary: string): AccelProbe;
  /** The unprivileged user QEMU runs as (created if missing). */
  ensureVmUser(): Promise<{ name: string; uid: number; gid: number }>;
  /** The group allowed on the API socket (created if missing); never QEMU's. */
  ensureApiGroup(): Promise<number>;
  stateDiskFormatter: StateDiskFormatter;
  processInspector: ProcessInspector;
  hostNetwork(options: { uid: number; gid: number; log: (line: string) => void }): HostNetworkLifecycle & HostNetworkControl;
}

export function createPlatformServices(config: TorvmConfig, runner: CommandRunner, os: HostOs = currentOs()): PlatformServices {
  if (os !== 'linux') throw new TorvmError('ERR_NOT_AVAILABLE', `the TorVM daemon for ${os} is not written yet`);
  return {
    os,
    // Next to the API socket: /run/torvm by default (a tmpfs, cleared at boot).
    runDir: dirname(config.api.socketPath),
    isPrivileged: () => process.getuid?.() === 0,
    checkQemu: (path) => checkQemuBinary(path, runner),
    accelProbe: (qemuBinary) => createLinuxAccelProbe({ runner, qemuBinary }),
    ensureVmUser: () => ensureSystemUser(runner),
    ensureApiGroup: () => ensureSystemGroup(runner),
    stateDiskFormatter: mkfsExt4Formatter(runner),
    processInspector: linuxProcessInspector,
    hostNetwork: ({ uid, gid, log }) => createLinuxHostNetwork({ runner, log, stateDir: config.vm.stateDir, network: { ...config.network, lanGateway: config.lanGateway }, torvmUid: uid, torvmGid: gid }),
  };
}

// ---- `torvm service` (part D): the service manager of this OS, behind one factory. ----
import type { ServiceControl } from '../service/service-control.ts';
import { createSystemdService } from './linux/service.ts';
import { createLaunchdService } from './darwin/service.ts';
import { createScService } from './win32/service.ts';

/** systemd on Linux; launchd (files only) on macOS; sc.exe rendering only on Windows. `root` redirects every write under a directory. */
export function createServiceControl(options: { runner: CommandRunner; root: string | null }, os: HostOs = currentOs()): ServiceControl {
  if (os === 'linux') return createSystemdService(options);
  if (os === 'darwin') return createLaunchdService({ root: options.root });
  return createScService();
}
