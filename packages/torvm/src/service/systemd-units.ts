/**
 * The systemd units of TorVM (PURE), rendered from a ServiceDescription.
 *
 *   torvm-early-boot-blocking.service   with autostart or lockdown. Before network-pre.target,
 *                                       after nftables/firewalld (whose `flush ruleset` would
 *                                       otherwise wipe it):
 *                                       `torvm killswitch engage --state blocked`, so at boot
 *                                       nothing leaves before any interface is up, until the
 *                                       daemon takes over (Mullvad's early-boot blocking).
 *                                       No ExecStop: stopping it never opens the network.
 *   torvm.service                       the daemon in service mode (`torvm --headless`).
 *                                       systemctl stop = SIGTERM = a cancelled run, which keeps
 *                                       the kill switch on; only `torvm down` opens the network,
 *                                       and lockdown keeps blocking even then.
 *
 * Hardening keeps what the daemon must do: nft and ip (CAP_NET_ADMIN), the TAP
 * (/dev/net/tun), /dev/kvm, QEMU's own drop to the VM user (-runas: CAP_SETUID/
 * CAP_SETGID; checked to work under no_new_privs), the gateway's port 53
 * (CAP_NET_BIND_SERVICE), creating the VM user and pointing /etc/resolv.conf at
 * the VM (so /etc stays writable: ProtectSystem=true, not full/strict). No
 * MemoryDenyWriteExecute: node's JIT and QEMU's TCG both need W+X memory.
 */
import { SERVICE_MARKER, blocksFromEarlyBoot, daemonArgv, earlyBlockArgv, validateServiceDescription, type ServiceDescription, type ServiceFile } from './service-description.ts';

export const SYSTEMD_MAIN_UNIT = 'torvm.service';
export const SYSTEMD_EARLY_BOOT_UNIT = 'torvm-early-boot-blocking.service';
/** Every unit TorVM may have written, whatever autostart says now: uninstall and status look at all of them. */
export const SYSTEMD_UNIT_NAMES = [SYSTEMD_EARLY_BOOT_UNIT, SYSTEMD_MAIN_UNIT] as const;
/** The target each unit is enabled under (its `WantedBy=`). */
export const SYSTEMD_WANTED_BY: Readonly<Record<(typeof SYSTEMD_UNIT_NAMES)[number], string>> = {
  [SYSTEMD_EARLY_BOOT_UNIT]: 'multi-user.target',
  [SYSTEMD_MAIN_UNIT]: 'multi-user.target',
};

const CAPABILITIES = [
  'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_NET_BIND_SERVICE',
  'CAP_SETUID', 'CAP_SETGID', 'CAP_CHOWN', 'CAP_FOWNER', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH',
  'CAP_KILL', 'CAP_AUDIT_WRITE',
];

const header = (description: string): string[] => [
  `# ${SERVICE_MARKER}`,
  `# ${description}`,
];

function unit(sections: Array<[name: string, lines: string[]]>, comment: string[]): string {
  return `${[comment.join('\n'), ...sections.map(([name, lines]) => [`[${name}]`, ...lines].join('\n'))].join('\n\n')}\n`;
}

function earlyBootUnit(d: ServiceDescription): string {
  return unit([
    ['Unit', [
      'Description=TorVM early-boot network blocking (until the TorVM daemon takes over)',
      'DefaultDependencies=no',
      // nftables.service and firewalld flush the whole ruleset when they start: go after them.
      'After=local-fs.target nftables.service firewalld.service',
      'Before=network-pre.target torvm.service shutdown.target',
      'Wants=network-pre.target',
      'Conflicts=shutdown.target',
      `RequiresMountsFor=${d.nodePath} ${d.cliEntry}`,
    ]],
    ['Service', [
      'Type=oneshot',
      'RemainAfterExit=yes',
      `ExecStart=${[d.nodePath, ...earlyBlockArgv(d)].join(' ')}`,
      '# No ExecStop: stopping this unit must never open the network.',
      'TimeoutStartSec=60',
    ]],
    ['Install', [`WantedBy=${SYSTEMD_WANTED_BY[SYSTEMD_EARLY_BOOT_UNIT]}`]],
  ], header('Blocks all traffic but loopback from before any interface is up.'));
}

function mainUnit(d: ServiceDescription): string {
  return unit([
    ['Unit', [
      'Description=TorVM: all TCP and DNS of this computer through Tor in a VM, fail-closed',
      `After=network-pre.target${blocksFromEarlyBoot(d) ? ` ${SYSTEMD_EARLY_BOOT_UNIT}` : ''}`,
      ...(blocksFromEarlyBoot(d) ? [`Wants=${SYSTEMD_EARLY_BOOT_UNIT}`] : []),
      'StartLimitIntervalSec=300',
      'StartLimitBurst=5',
    ]],
    ['Service', [
      'Type=simple',
      `ExecStart=${[d.nodePath, ...daemonArgv(d)].join(' ')}`,
      `User=${d.user}`,
      `Group=${d.group}`,
      'Restart=on-failure',
      'RestartSec=5s',
      '# SIGTERM to the daemon only: it shuts the VM down itself and keeps the kill switch on.',
      'KillMode=mixed',
      'TimeoutStopSec=120',
      'UMask=0077',
      'NoNewPrivileges=yes',
      `CapabilityBoundingSet=${CAPABILITIES.join(' ')}`,
      'DevicePolicy=closed',
      'DeviceAllow=/dev/net/tun rw',
      'DeviceAllow=/dev/kvm rw',
      'ProtectSystem=true',
      'ProtectHome=read-only',
      'PrivateTmp=yes',
      'ProtectControlGroups=yes',
      'ProtectKernelLogs=yes',
      'ProtectClock=yes',
      'ProtectHostname=yes',
      'RestrictSUIDSGID=yes',
      'RestrictRealtime=yes',
      'LockPersonality=yes',
      'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK AF_PACKET',
      'SystemCallArchitectures=native',
    ]],
    ['Install', [`WantedBy=${SYSTEMD_WANTED_BY[SYSTEMD_MAIN_UNIT]}`]],
  ], header('The TorVM daemon in service mode; `torvm status` and the GUI talk to it.'));
}

/** The units for this description: the daemon, and with autostart or lockdown the early-boot blocker. */
export function renderSystemdUnits(d: ServiceDescription): ServiceFile[] {
  validateServiceDescription(d);
  const files: ServiceFile[] = [];
  if (blocksFromEarlyBoot(d)) files.push({ name: SYSTEMD_EARLY_BOOT_UNIT, content: earlyBootUnit(d), mode: 0o644 });
  files.push({ name: SYSTEMD_MAIN_UNIT, content: mainUnit(d), mode: 0o644 });
  return files;
}
