/** What every CLI command receives: parsed global options and output helpers. */
import { TorvmError, describeError, exitCodeFor } from '../core/errors.ts';
import { loadConfigFile } from '../platform/config-file.ts';
import { defaultConfig, type TorvmConfig, type Accel } from '../core/config.ts';
import { platformDefaults } from '../platform/index.ts';
import { existsSync } from 'node:fs';

export const DEFAULT_CONFIG_PATH = '/etc/torvm/config.json';

export interface GlobalOptions {
  config?: string;
  json?: boolean;
  verbose?: boolean;
  headless?: boolean;
  accel?: Accel;
}

export interface CliIo {
  out: (text: string) => void;
  err: (text: string) => void;
}

export const processIo: CliIo = {
  out: (t) => process.stdout.write(t.endsWith('\n') ? t : `${t}\n`),
  err: (t) => process.stderr.write(t.endsWith('\n') ? t : `${t}\n`),
};

/**
 * The effective config: the file given with --config (which must exist), else
 * the system file if present, else the defaults. --accel overrides vm.accel.
 */
export async function effectiveConfig(opts: GlobalOptions): Promise<{ config: TorvmConfig; source: string }> {
  const defaults = platformDefaults();
  const uid = typeof process.getuid === 'function' ? process.getuid() : undefined;
  let config: TorvmConfig;
  let source: string;
  if (opts.config !== undefined) {
    config = await loadConfigFile(opts.config, { defaults, ...(uid !== undefined ? { uid } : {}) });
    source = opts.config;
  } else if (existsSync(DEFAULT_CONFIG_PATH)) {
    config = await loadConfigFile(DEFAULT_CONFIG_PATH, { defaults, ...(uid !== undefined ? { uid } : {}) });
    source = DEFAULT_CONFIG_PATH;
  } else {
    config = defaultConfig(defaults);
    source = '(defaults)';
  }
  if (opts.accel !== undefined) config = { ...config, vm: { ...config.vm, accel: opts.accel } };
  return { config, source };
}

/** Prints an error the way the CLI contract says and returns the exit code. */
export function reportError(err: unknown, opts: GlobalOptions, io: CliIo): 1 | 2 {
  const code = exitCodeFor(err);
  if (opts.json) {
    const e = err instanceof TorvmError ? { code: err.code, message: err.message, hint: err.hint, details: err.details } : { code: 'ERR_INTERNAL', message: String(err) };
    io.out(JSON.stringify({ ok: false, error: e }, null, 2));
  } else {
    io.err(`torvm: ${describeError(err)}`);
  }
  return code;
}
