/**
 * Reading the config file safely. The file decides where traffic goes, so a
 * file that another user could have written is refused before it is parsed.
 */
import { readFile, stat } from 'node:fs/promises';
import { TorvmError } from '../core/errors.ts';
import { validateConfig, type PlatformDefaults, type TorvmConfig } from '../core/config.ts';

export interface ConfigFileOptions {
  defaults: PlatformDefaults;
  /** The invoking user's uid; undefined on Windows (ACLs are not checked there yet). */
  uid?: number;
}

/** Refuses a file not owned by root or the invoking user, or writable by group or others. */
export async function checkConfigFileSafety(path: string, uid: number): Promise<void> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new TorvmError('ERR_CONFIG_UNREADABLE', `cannot read the config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isFile()) throw new TorvmError('ERR_CONFIG_UNREADABLE', `the config file ${path} is not a regular file`);
  if (st.uid !== 0 && st.uid !== uid) {
    throw new TorvmError('ERR_CONFIG_UNSAFE_FILE', `the config file ${path} is owned by uid ${st.uid}, not by root${uid !== 0 ? ` or you (uid ${uid})` : ''}`, {
      hint: `sudo chown root:root '${path}'`,
    });
  }
  if ((st.mode & 0o022) !== 0) {
    throw new TorvmError('ERR_CONFIG_UNSAFE_FILE', `the config file ${path} is writable by ${st.mode & 0o002 ? 'everyone' : 'its group'} (mode ${(st.mode & 0o777).toString(8)})`, {
      hint: `chmod go-w '${path}'`,
    });
  }
}

/** Reads, checks and validates a config file. Throws TorvmError (user codes) on any problem. */
export async function loadConfigFile(path: string, options: ConfigFileOptions): Promise<TorvmConfig> {
  if (options.uid !== undefined) await checkConfigFileSafety(path, options.uid);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new TorvmError('ERR_CONFIG_UNREADABLE', `cannot read the config file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new TorvmError('ERR_CONFIG_UNREADABLE', `the config file ${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const result = validateConfig(json, options.defaults);
  if (!result.ok) {
    const list = result.problems.map((p) => `  ${p.path}: ${p.message}`).join('\n');
    throw new TorvmError('ERR_CONFIG_INVALID', `the config file ${path} is invalid:\n${list}`, { details: { problems: result.problems } });
  }
  if (options.uid !== undefined) await refuseReadableSecrets(path, result.config);
  return result.config;
}

/** The config fields that hold secrets, when they are set. */
function secretFields(config: TorvmConfig): string[] {
  const fields: string[] = [];
  if (config.tor.bridges.lines.length > 0) fields.push('tor.bridges.lines');
  if ('password' in config.tor.proxy && config.tor.proxy.password !== undefined) fields.push('tor.proxy.password');
  if (config.lanGateway.users.length > 0) fields.push('lanGateway.users');
  return fields;
}

/** Bridge lines and passwords must not be readable by other users: a censor who reads a bridge blocks it. */
async function refuseReadableSecrets(path: string, config: TorvmConfig): Promise<void> {
  const fields = secretFields(config);
  const mode = (await stat(path)).mode;
  if (fields.length > 0 && (mode & 0o044) !== 0) {
    throw new TorvmError('ERR_CONFIG_UNSAFE_FILE', `the config file ${path} holds secrets (${fields.join(', ')}) but is readable by ${mode & 0o004 ? 'everyone' : 'its group'} (mode ${(mode & 0o777).toString(8)})`, {
      hint: `chmod 600 '${path}'`,
    });
  }
}

/**
 * Writes the config atomically (temp file, fsync, rename) with mode 0600, so
 * a crash never leaves a half-written file and other users cannot read secrets.
 */
export async function saveConfigFile(path: string, config: TorvmConfig): Promise<void> {
  const { open, rename } = await import('node:fs/promises');
  const tmp = `${path}.tmp-${process.pid}`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(`${JSON.stringify(config, null, 2)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(tmp, path);
}
