/**
 * A LAN next to a harness network's host namespace: one "device" namespace
 * joined to the host namespace by a veth pair, for companion and LAN-gateway
 * tests. Nothing here touches the root namespace: every `ip` call names a
 * namespace, and the device gets its own /etc/netns/NAME/resolv.conf.
 *
 *   host ns (TorVM host)                    device ns (a phone, a laptop)
 *   lan0 192.168.77.1/24  ---- veth ----  lan0 192.168.77.2/24 (+ .200/24, an "outsider" address)
 *                                          default via 192.168.77.1
 *
 * The device's only way anywhere is the TorVM host, whose kill switch drops
 * everything from the LAN except the gateway's ports: so a leak cannot
 * succeed, but the capture on the device's lan0 still shows any attempt.
 */
import { createNamespace, deleteNamespace, ipIn } from './netns.ts';

export const LAN = {
  iface: 'lan0',
  prefixLength: 24,
  subnet: '192.168.77.0/24',
  hostAddress: '192.168.77.1',
  deviceAddress: '192.168.77.2',
  /** A second device address, outside the /25 that gateway tests allow. */
  outsiderAddress: '192.168.77.200',
  /** The part of the LAN the gateway tests allow (the device, not the outsider). */
  allowedSubnet: '192.168.77.0/25',
} as const;

export interface Lan {
  /** The device namespace's name. */
  readonly device: string;
  /** The host namespace the LAN hangs off (the harness's `namespaces.host`). */
  readonly host: string;
  /** Removes the device namespace (which takes the veth pair with it). Idempotent. */
  stop(): Promise<void>;
}

/** Creates the device namespace `<hostNs>-dev` and the veth pair. */
export async function createLan(hostNs: string): Promise<Lan> {
  const device = `${hostNs}-dev`.slice(0, 40);
  // The device's resolver names the gateway; the companion's TUN catches port 53 wherever it goes.
  await createNamespace(device, `nameserver ${LAN.hostAddress}\n`);
  let stopped = false;
  const lan: Lan = {
    device, host: hostNs,
    async stop() {
      if (stopped) return;
      stopped = true;
      await deleteNamespace(device);
    },
  };
  try {
    // Created inside the device namespace, then one end moved to the host: no link ever exists in the root namespace.
    await ipIn(device, ['link', 'add', LAN.iface, 'type', 'veth', 'peer', 'name', 'lanhost0']);
    await ipIn(device, ['link', 'set', 'lanhost0', 'netns', hostNs]);
    await ipIn(hostNs, ['link', 'set', 'lanhost0', 'name', LAN.iface]);
    await ipIn(hostNs, ['addr', 'add', `${LAN.hostAddress}/${LAN.prefixLength}`, 'dev', LAN.iface]);
    await ipIn(hostNs, ['link', 'set', LAN.iface, 'up']);
    await ipIn(device, ['addr', 'add', `${LAN.deviceAddress}/${LAN.prefixLength}`, 'dev', LAN.iface]);
    await ipIn(device, ['addr', 'add', `${LAN.outsiderAddress}/${LAN.prefixLength}`, 'dev', LAN.iface]);
    await ipIn(device, ['link', 'set', LAN.iface, 'up']);
    await ipIn(device, ['route', 'add', 'default', 'via', LAN.hostAddress, 'dev', LAN.iface]);
  } catch (error) {
    await lan.stop();
    throw error;
  }
  return lan;
}
