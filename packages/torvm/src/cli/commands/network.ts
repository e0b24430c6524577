/** `torvm killswitch engage|release|status` and `torvm restore`: host networking without the VM. */
import type { Command } from 'commander';
import { Option } from 'commander';
import { createHostNetworkControl, processInspector } from '../../platform/index.ts';
import { createCommandRunner } from '../../platform/exec.ts';
import { TorvmError } from '../../core/errors.ts';
import type { PolicyState } from '../../core/policy.ts';
import { effectiveConfig, type CliIo, type GlobalOptions } from '../context.ts';
import { dirname } from 'node:path';
import { stopOrphanQemu } from '../../vm/orphan.ts';
import { vmPaths } from '../../vm/vm-paths.ts';
import type { CommandRunnerFn } from '../main.ts';

async function hostNetwork(opts: GlobalOptions, io: CliIo) {
  if (process.getuid?.() !== 0) throw new TorvmError('ERR_NOT_ROOT', 'changing the kill switch or host networking needs root', { hint: 'run it with sudo' });
  const { config } = await effectiveConfig(opts);
  const runner = createCommandRunner(opts.verbose ? (line) => io.err(line) : undefined);
  return createHostNetworkControl(config, runner, (line) => { if (opts.verbose) io.err(line); });
}

export function registerNetworkCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const killswitch = program.command('killswitch').description('engage, release or show the host kill switch (callable from an early-boot unit)');

  killswitch.command('engage')
    .description('block all traffic except loopback (and, in `booting`, the VM link) until TorVM takes over')
    .addOption(new Option('--state <state>', 'which policy to load').choices(['blocked', 'booting']).default('blocked'))
    .action(run(async (opts) => {
      const state = (opts as GlobalOptions & { state: PolicyState }).state;
      await (await hostNetwork(opts, io)).engageKillSwitch(state);
      io.out(opts.json ? JSON.stringify({ ok: true, state }) : `kill switch engaged (${state})`);
      return 0;
    }));

  killswitch.command('release')
    .description('remove the kill switch (refused while a TorVM run owns the network: use `down` or `restore`)')
    .action(run(async (opts) => {
      await (await hostNetwork(opts, io)).releaseKillSwitch();
      io.out(opts.json ? JSON.stringify({ ok: true }) : 'kill switch released');
      return 0;
    }));

  killswitch.command('status')
    .description('show what the kernel enforces right now')
    .action(run(async (opts) => {
      const status = await (await hostNetwork(opts, io)).killSwitchStatus();
      io.out(opts.json ? JSON.stringify(status) : status.present ? `kill switch engaged (${status.state ?? 'unknown state'})` : 'kill switch not engaged');
      return 0;
    }));

  program.command('restore')
    .description('undo what a crashed run left behind, from its journal (the kill switch stays on until everything is back)')
    .action(run(async (opts) => {
      const net = await hostNetwork(opts, io);
      // A VM left running by the crashed controller goes first, while the kill switch still holds.
      const { config } = await effectiveConfig(opts);
      const orphan = await stopOrphanQemu(vmPaths(config.vm.stateDir, dirname(config.api.socketPath)), processInspector());
      if (orphan !== null && !opts.json) io.out(`stopped the VM left running by the crashed controller (pid ${orphan})`);
      const restored = await net.restore();
      io.out(opts.json ? JSON.stringify({ ok: true, restored }) : restored ? 'host networking restored' : 'nothing to restore');
      return 0;
    }));
}
