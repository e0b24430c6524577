/** `torvm config validate|show|schema` */
import type { Command } from 'commander';
import { loadConfigFile } from '../../platform/config-file.ts';
import { configJsonSchema, maskSecrets } from '../../core/config.ts';
import { platformDefaults } from '../../platform/index.ts';
import { TorvmError } from '../../core/errors.ts';
import { effectiveConfig, type CliIo } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

export function registerConfigCommands(program: Command, io: CliIo, run: CommandRunnerFn): void {
  const config = program.command('config').description('validate, show or describe the config file');

  config.command('validate')
    .description('check a config file; prints nothing and exits 0 when it is valid, else names every bad field (exit 2)')
    .argument('<file>', 'the config file (JSON)')
    .action(run(async (opts, [file = '']) => {
      const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
      try {
        await loadConfigFile(file, { defaults: platformDefaults(), ...(uid !== undefined ? { uid } : {}) });
      } catch (err) {
        if (err instanceof TorvmError && err.code === 'ERR_CONFIG_INVALID' && Array.isArray(err.details?.problems)) {
          const problems = err.details.problems as Array<{ path: string; message: string }>;
          if (opts.json) io.out(JSON.stringify({ ok: false, file, problems }, null, 2));
          else for (const p of problems) io.err(`${file}: ${p.path}: ${p.message}`);
          return 2;
        }
        throw err;
      }
      if (opts.json) io.out(JSON.stringify({ ok: true, file }));
      return 0;
    }));

  config.command('show')
    .description('print the effective config (file or defaults), with secrets masked')
    .action(run(async (opts) => {
      const { config: effective, source } = await effectiveConfig(opts);
      const masked = maskSecrets(effective);
      io.out(JSON.stringify(opts.json ? { source, config: masked } : masked, null, 2));
      return 0;
    }));

  config.command('schema')
    .description('print the JSON Schema of the config file')
    .action(run(async () => {
      io.out(JSON.stringify(configJsonSchema(platformDefaults()), null, 2));
      return 0;
    }));
}
