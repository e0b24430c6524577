/**
 * The network journal: what the host looked like before TorVM changed it, and
 * which changes were made. Written before each change, durably, so `restore`
 * can undo a crashed run.
 */
import { open, rename, readFile, unlink, mkdir } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { TorvmError } from '../../core/errors.ts';
import type { Journal, NetworkJournal } from '../host-network.ts';

export const JOURNAL_FILE = 'network-journal.json';
const JOURNAL_TMP_PREFIX = 'torvm-tmp.';

/** Writes `content` to `path` atomically and durably: temp file (0600), fsync, rename, fsync of the directory. */
export async function writeFileDurable(path: string, content: string, mode = 0o600): Promise<void> {
  const tmp = join(dirname(path), `.${JOURNAL_TMP_PREFIX}${process.pid}.${Date.now()}.${randomBytes(4).toString('hex')}`);
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(content);
    await fh.chmod(mode); // the umask must not widen or narrow it
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

function isJournal(value: unknown): value is NetworkJournal {
  if (typeof value !== 'object' || value === null) return false;
  const v = value as Record<string, unknown>;
  return v.version === 1 && typeof v.plan === 'object' && typeof v.dns === 'object' && Array.isArray(v.steps);
}

/** The journal as one JSON file in the state directory. */
export function createFileJournal(stateDir: string): Journal {
  const path = join(stateDir, JOURNAL_FILE);
  return {
    async read() {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
        throw new TorvmError('ERR_NETWORK', `cannot read the network journal ${path}`, { cause: err });
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch (err) {
        throw new TorvmError('ERR_NETWORK', `the network journal ${path} is corrupt`, { cause: err, hint: 'inspect it, then remove it and check routes/DNS by hand' });
      }
      if (!isJournal(parsed)) throw new TorvmError('ERR_NETWORK', `the network journal ${path} has an unknown shape`);
      return parsed;
    },
    async write(journal) {
      await mkdir(stateDir, { recursive: true, mode: 0o700 });
      await writeFileDurable(path, `${JSON.stringify(journal, null, 2)}\n`);
    },
    async clear() {
      await unlink(path).catch((err: NodeJS.ErrnoException) => {
        if (err.code !== 'ENOENT') throw err;
      });
    },
  };
}
