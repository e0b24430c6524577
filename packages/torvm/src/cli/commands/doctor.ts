/** `torvm doctor [--json]` */
import type { Command } from 'commander';
import { runDoctor } from '../../daemon/doctor.ts';
import { createCommandRunner } from '../../platform/exec.ts';
import { effectiveConfig, type CliIo } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

export function registerDoctorCommand(program: Command, io: CliIo, run: CommandRunnerFn): void {
  program.command('doctor')
    .description('check that this machine can run TorVM and say how to fix what is missing (exit 1 if a required check fails)')
    .action(run(async (opts) => {
      const { config, source } = await effectiveConfig(opts);
      const report = await runDoctor({ runner: createCommandRunner(), config, configSource: source, uid: process.getuid?.() });
      if (opts.json) {
        io.out(JSON.stringify(report, null, 2));
      } else {
        for (const c of report.checks) {
          io.out(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'}  ${c.name.padEnd(11)} ${c.detail}${c.ok || !c.fix ? '' : `\n      fix: ${c.fix}`}`);
        }
        io.out(report.ok ? 'TorVM can run here.' : 'TorVM cannot run here yet: fix the FAIL lines above.');
      }
      return report.ok ? 0 : 1;
    }));
}
