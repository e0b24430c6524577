/** `torvm up|down|status`, `demo`, `gui` and the default daemon. */
import type { Command } from 'commander';
import { TorvmError } from '../../core/errors.ts';
import { getStatus, requestStop } from '../../api/client.ts';
import type { DaemonStatus } from '../../api/schema.ts';
import { runDaemon } from '../../daemon/daemon.ts';
import { TOR_ROUTES } from '../../api/routes-tor.ts';
import { effectiveConfig, type CliIo } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';
import { registerGuiCommand, runServiceWithGui } from './gui.ts';

/** Commands whose work lands with the GUI and demo parts. */
const PENDING: Array<[name: string, description: string]> = [
];

function describeStatus(s: DaemonStatus): string {
  const lines = [
    `state:       ${s.state}${s.testingNetwork ? '   (TESTING NETWORK, not the public Tor network)' : ''}`,
    `kill switch: ${s.killSwitch}`,
    `bootstrap:   ${s.bootstrap.progress}% ${s.bootstrap.summary}${s.bootstrap.problem ? `\n             problem: ${s.bootstrap.problem}` : ''}`,
    `vm:          ${s.vm.pid === null ? 'not running' : `pid ${s.vm.pid}`}${s.vm.accel ? `, ${s.vm.accel}` : ''}${s.vm.restarts ? `, restarted ${s.vm.restarts}×` : ''}`,
    `tor:         ${s.tor.version ?? 'unknown version'}`,
    `circuits:    ${s.tor.circuits.length} built${s.tor.circuits[0] ? ` (e.g. ${s.tor.circuits[0].hops.map((h) => h.nickname ?? h.fingerprint?.slice(0, 8) ?? '?').join(' > ')})` : ''}`,
    `bandwidth:   ${(s.tor.bandwidth.readBps / 1024).toFixed(1)} KiB/s down, ${(s.tor.bandwidth.writtenBps / 1024).toFixed(1)} KiB/s up`,
  ];
  for (const w of s.tor.warnings.slice(-3)) lines.push(`tor warning: ${w}`);
  if (s.lastError) lines.push(`last error:  ${s.lastError.message}`);
  return lines.join('\n');
}

export function registerLifecycleCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const notYet = (name: string) => run(async () => {
    throw new TorvmError('ERR_NOT_AVAILABLE', `"torvm ${name}" is not available in this build yet`, { hint: 'see the project issues for its status' });
  });
  for (const [name, description] of PENDING) program.command(name).description(description).action(notYet(name));

  program.command('demo')
    .description('run a complete sandboxed demo (root): a private Tor network in network namespaces, TorVM in a "host" namespace, a fetch through Tor and a leak check; needs no internet')
    .option('--image <dir>', 'the VM image to boot', process.env.TORVM_IMAGE_DIR ?? '/var/cache/torvm/image')
    .action(run(async (opts) => {
      if (process.getuid?.() !== 0) throw new TorvmError('ERR_NOT_ROOT', 'the demo creates network namespaces and needs root', { hint: 'run `sudo torvm demo`' });
      const image = (opts as typeof opts & { image: string }).image;
      // The demo drives the test harness from the repository; it is not part of an installed TorVM.
      let demo: { runDemo(o: { imageDir: string; say: (line: string) => void }): Promise<number> };
      try {
        demo = (await import(new URL('../../../../../demo/run-demo.ts', import.meta.url).href)) as typeof demo;
      } catch (err) {
        throw new TorvmError('ERR_NOT_AVAILABLE', 'the demo needs a checkout of the TorVM repository', { cause: err });
      }
      return demo.runDemo({ imageDir: image, say: (line) => io.out(line) });
    }));

  program.command('up')
    .description('start protecting this computer (root): engage the kill switch, start the VM, route everything through Tor; runs until `torvm down`')
    .action(run(async (opts) => {
      const { config, source } = await effectiveConfig(opts);
      const { exitCode } = await runDaemon({ config, configPath: source.startsWith('(') ? null : source, mode: 'once', verbose: opts.verbose ?? false, progress: (line) => io.err(line), routes: TOR_ROUTES });
      return exitCode;
    }));

  program.command('down')
    .description('stop: shut down the VM and restore open networking (lockdown keeps blocking)')
    .action(run(async (opts) => {
      const { config } = await effectiveConfig(opts);
      await requestStop(config.api.socketPath, { kind: 'user-stop' });
      io.out(opts.json ? JSON.stringify({ ok: true }) : 'stopping TorVM');
      return 0;
    }));

  program.command('status')
    .description('show the lifecycle state, bootstrap progress and kill switch state')
    .action(run(async (opts) => {
      const { config } = await effectiveConfig(opts);
      const s = await getStatus(config.api.socketPath);
      io.out(opts.json ? JSON.stringify(s, null, 2) : describeStatus(s));
      return 0;
    }));

  program.allowExcessArguments(true).action(run(async (opts, positionals) => {
    if (positionals.length > 0) throw new TorvmError('ERR_USAGE', `unknown command "${positionals[0]}"`, { hint: 'run `torvm --help` for the list of commands' });
    return runServiceWithGui(opts, io);
  }));
  registerGuiCommand(program, io, run);
}
