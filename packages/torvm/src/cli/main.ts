/**
 * The `torvm` command line. Exit codes: 0 ok, 1 runtime failure, 2 bad usage
 * or bad input. Every command has --help; --json gives machine-readable output.
 */
import { Command, CommanderError, Option } from 'commander';
import { ACCELERATORS } from '../core/config.ts';
import { TorvmError } from '../core/errors.ts';
import { processIo, reportError, type CliIo, type GlobalOptions } from './context.ts';
import { registerCompanionCommand } from './commands/companion.ts';
import { registerConfigCommands } from './commands/config.ts';
import { registerDoctorCommand } from './commands/doctor.ts';
import { registerImageCommands } from './commands/image.ts';
import { registerLifecycleCommands } from './commands/lifecycle.ts';
import { registerNetworkCommands } from './commands/network.ts';
import { registerTorFeatureCommands } from './commands/newnym.ts';
import { registerServiceCommands } from './commands/service.ts';

/** Wraps a command body: collects options and positionals, maps errors to exit codes. */
export type CommandRunnerFn = (fn: (opts: GlobalOptions, positionals: string[]) => Promise<number>) => (...args: unknown[]) => Promise<void>;

export function buildProgram(io: CliIo, setExit: (code: number) => void): Command {
  const program = new Command('torvm')
    .description('TorVM sends every TCP connection and DNS query of this computer through Tor in a small VM, and blocks everything else.\nWith no command, it starts the daemon and opens the GUI.')
    .addOption(new Option('--config <file>', 'config file (JSON); default /etc/torvm/config.json or built-in defaults'))
    .addOption(new Option('--accel <name>', 'VM accelerator').choices(ACCELERATORS))
    .option('--headless', 'run the daemon without opening the GUI')
    .option('--verbose', 'log debug details, including every command run')
    .option('--json', 'machine-readable output')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });

  const run: CommandRunnerFn = (fn) => async (...args) => {
    const command = args[args.length - 1] as Command;
    const opts = command.optsWithGlobals<GlobalOptions>();
    const positionals = command.args;
    try {
      setExit(await fn(opts, positionals));
    } catch (err) {
      setExit(reportError(err, opts, io));
    }
  };

  registerCompanionCommand(program, io, run);
  registerConfigCommands(program, io, run);
  registerDoctorCommand(program, io, run);
  registerImageCommands(program, io, run);
  registerLifecycleCommands(program, io, run);
  registerNetworkCommands(program, io, run);
  registerServiceCommands(program, io, run);
  registerTorFeatureCommands(program, io, run);
  for (const c of program.commands) applyExitOverride(c, io);
  return program;
}

function applyExitOverride(command: Command, io: CliIo): void {
  command.exitOverride().configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) }).showHelpAfterError('(run with --help for usage)');
  for (const c of command.commands) applyExitOverride(c, io);
}

/** Runs the CLI and returns the process exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let exitCode = 0;
  const program = buildProgram(io, (c) => { exitCode = c; });
  try {
    await program.parseAsync([...argv], { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    return reportError(err instanceof Error ? err : new TorvmError('ERR_INTERNAL', String(err)), {}, io);
  }
  return exitCode;
}
