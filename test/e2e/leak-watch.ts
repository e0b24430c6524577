/**
 * The leak detector for end-to-end runs (Tails' method): capture everything
 * on the host's uplink, then require that every IP flow is the VM's Tor
 * talking to a relay of the test network, taken as an allowlist from the
 * network's own relay list.
 */
import { join } from 'node:path';
import { startCapture, pcapFlows, isFlowAllowed, describeFlow, type Capture, type Flow, type IpPacket } from '../harness/pcap.ts';
import type { TorNetwork } from '../harness/tor-network.ts';

export interface LeakWatch {
  /** Stops the capture and returns every flow that is not Tor-to-a-relay. */
  stop(): Promise<{ leaks: Flow[]; flows: Flow[]; packets: IpPacket[] }>;
}

export async function watchUplink(network: TorNetwork, dir: string, name: string): Promise<LeakWatch> {
  const capture: Capture = await startCapture({ netns: network.namespaces.host, iface: network.uplink.hostIface, file: join(dir, `${name}.pcap`), filter: ['not', 'arp'] });
  return {
    async stop() {
      const file = await capture.stop();
      const flows = pcapFlows(file.packets);
      return { leaks: flows.filter((f) => !isFlowAllowed(f, network.relayAllowlist)), flows, packets: file.packets };
    },
  };
}

export const describeLeaks = (leaks: readonly Flow[]) => leaks.map(describeFlow).join('\n');
