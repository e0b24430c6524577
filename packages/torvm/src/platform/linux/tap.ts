/**
 * The host end of the VM's LAN link: a TAP owned by the torvm user, the host's
 * /30 address, and a permanent neighbour entry that pins the VM's MAC.
 */
import type { CommandRunner } from '../exec.ts';
import type { TapLink } from '../host-network.ts';

export interface LinuxTapOptions {
  netns?: string;
  timeoutMs?: number;
}

export function createLinuxTap(runner: CommandRunner, options: LinuxTapOptions = {}): TapLink {
  const ip = (args: string[], okExitCodes: number[] = []) =>
    runner.run('ip', args, { timeoutMs: options.timeoutMs ?? 10_000, okExitCodes, ...(options.netns ? { netns: options.netns } : {}) });

  async function exists(name: string): Promise<boolean> {
    return (await ip(['link', 'show', 'dev', name], [1])).exitCode === 0;
  }

  return {
    exists,
    async create(plan) {
      const t = plan.tap;
      // Adopt a TAP left by a crashed run (QEMU may still hold it); otherwise create it.
      if (!(await exists(t.name))) {
        await ip(['tuntap', 'add', 'dev', t.name, 'mode', 'tap', 'user', String(t.ownerUid), 'group', String(t.ownerGid)]);
      }
      // A fixed host MAC, so the guest can pin it in its own static ARP entry.
      await ip(['link', 'set', 'dev', t.name, 'address', t.hostMac]);
      await ip(['addr', 'replace', t.hostCidr, 'dev', t.name]);
      await ip(['link', 'set', 'dev', t.name, 'up']);
      await ip(['neigh', 'replace', t.vmAddress, 'lladdr', t.vmMac, 'dev', t.name, 'nud', 'permanent']);
    },
    async destroy(name) {
      // Exit 1: "Cannot find device" — already gone, which is the goal.
      if (await exists(name)) await ip(['link', 'del', 'dev', name], [1]);
    },
  };
}
