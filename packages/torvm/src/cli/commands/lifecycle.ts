/** `torvm up|down|status|restore|demo|gui|killswitch …` and the default daemon. */
import type { Command } from 'commander';
import { TorvmError } from '../../core/errors.ts';
import type { CliIo } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

/** Commands whose work lands with the host-networking, VM runtime and GUI parts. */
const PENDING: Array<[name: string, description: string]> = [
  ['up', 'start protecting this computer: engage the kill switch, start the VM, route everything through Tor'],
  ['down', 'stop: shut down the VM and restore open networking (unless lockdown is on)'],
  ['status', 'show the lifecycle state, bootstrap progress and kill switch state'],
  ['restore', 'undo what a crashed run left behind, from its journal'],
  ['demo', 'run a complete sandboxed demo on a private Tor network in network namespaces (root)'],
  ['gui', "open the GUI in the desktop user's browser"],
];

export function registerLifecycleCommands(program: Command, _io: CliIo, run: CommandRunnerFn): void {
  const notYet = (name: string) => run(async () => {
    throw new TorvmError('ERR_NOT_AVAILABLE', `"torvm ${name}" is not available in this build yet`, { hint: 'see the project issues for its status' });
  });
  for (const [name, description] of PENDING) program.command(name).description(description).action(notYet(name));

  const killswitch = program.command('killswitch').description('engage, release or show the host kill switch (for early boot)');
  for (const verb of ['engage', 'release', 'status']) killswitch.command(verb).description(`${verb} the kill switch`).action(notYet(`killswitch ${verb}`));

  program.allowExcessArguments(true).action(run(async (_opts, positionals) => {
    if (positionals.length > 0) throw new TorvmError('ERR_USAGE', `unknown command "${positionals[0]}"`, { hint: 'run `torvm --help` for the list of commands' });
    throw new TorvmError('ERR_NOT_AVAILABLE', 'the daemon with its GUI is not available in this build yet', { hint: 'see the project issues for its status' });
  }));
}
