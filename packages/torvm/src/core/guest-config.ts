/**
 * The per-boot guest settings, passed to the VM by fw_cfg
 * (GUEST.fwCfg.guestConfig) and read by image/guest/init. PURE.
 *
 * Format: `KEY=value` lines, a closed set of keys, every value matching a
 * strict grammar. The guest's shell checks each value again before use, so a
 * bad value stops the guest rather than reaching a command.
 */
import type { TorvmConfig } from './config.ts';
import { TorvmError } from './errors.ts';
import { VM_LAN_MAC, VM_WAN_MAC } from './policy.ts';

/** The MACs the controller gives the guest's NICs; the guest finds wan and lan by them. */
export interface GuestNics {
  wanMac: string;
  lanMac: string;
  /** MAC of the host's end of the link (the TAP); the guest pins it in a static ARP entry. Omit if unknown. */
  hostMac?: string;
}

/** Fixed, locally administered MACs for the two guest NICs (QEMU's 52:54:00 prefix). */
export const DEFAULT_GUEST_NICS: Readonly<Pick<GuestNics, 'wanMac' | 'lanMac'>> = {
  wanMac: VM_WAN_MAC,
  lanMac: VM_LAN_MAC,
};

/** The host link is always a /30: the VM and the host are its two addresses. */
export const LAN_PREFIX = 30;

export const GUEST_SETTINGS_FORMAT = 1;

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;
const IPV4 = /^((25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

function checked(key: string, value: string, ok: boolean): string {
  if (!ok) throw new TorvmError('ERR_UNSAFE_VALUE', `guest settings: ${key} has an invalid value`, { details: { key } });
  return value;
}

function mac(key: string, value: string): string {
  return checked(key, value, MAC.test(value) && (parseInt(value.slice(0, 2), 16) & 1) === 0);
}

function port(key: string, value: number): string {
  return checked(key, String(value), Number.isInteger(value) && value >= 1 && value <= 65535);
}

/** Renders the guest settings file. Throws TorvmError ERR_UNSAFE_VALUE on any value outside its grammar. */
export function renderGuestSettings(config: TorvmConfig, nics: GuestNics): string {
  const { network, tor } = config;
  if (nics.wanMac === nics.lanMac) throw new TorvmError('ERR_UNSAFE_VALUE', 'guest settings: wan and lan need different MACs');
  const lines: Array<[string, string]> = [
    ['TORVM_GUEST_FORMAT', String(GUEST_SETTINGS_FORMAT)],
    ['LAN_ADDRESS', checked('LAN_ADDRESS', network.vmAddress, IPV4.test(network.vmAddress))],
    ['LAN_PREFIX', String(LAN_PREFIX)],
    ['HOST_ADDRESS', checked('HOST_ADDRESS', network.hostAddress, IPV4.test(network.hostAddress))],
    ['HOST_MAC', nics.hostMac === undefined ? '' : mac('HOST_MAC', nics.hostMac)],
    ['LAN_MAC', mac('LAN_MAC', nics.lanMac)],
    ['WAN_MAC', mac('WAN_MAC', nics.wanMac)],
    ['SOCKS_PORT', port('SOCKS_PORT', tor.socksPort)],
    ['CONTROL_PORT', port('CONTROL_PORT', tor.controlPort)],
    ['TRANS_PORT', port('TRANS_PORT', tor.transPort)],
    ['DNS_PORT', port('DNS_PORT', tor.dnsPort)],
  ];
  return `${lines.map(([k, v]) => `${k}=${v}`).join('\n')}\n`;
}
