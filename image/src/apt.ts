/**
 * The ordinary apt client, pointed at a private state directory per
 * architecture under the cache. It never touches the build host's apt lists,
 * dpkg architectures or status, and works the same for a foreign arch.
 * The host's sources.list is used as is.
 */
import { mkdirSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { CommandRunner } from '../../packages/torvm/src/platform/exec.ts';

export interface PrivateApt {
  /** apt-get/apt-cache options that select the private state for this arch. */
  options: string[];
  dir: string;
}

export function privateApt(cacheDir: string, debianArch: string): PrivateApt {
  const dir = join(cacheDir, `apt-${debianArch}`);
  for (const d of ['lists/partial', 'cache/archives/partial']) mkdirSync(join(dir, d), { recursive: true });
  if (!existsSync(join(dir, 'status'))) writeFileSync(join(dir, 'status'), '');
  return {
    dir,
    options: [
      '-o', `APT::Architecture=${debianArch}`,
      '-o', `APT::Architectures::=${debianArch}`,
      '-o', `Dir::State::Lists=${join(dir, 'lists')}`,
      '-o', `Dir::State::status=${join(dir, 'status')}`,
      '-o', `Dir::Cache=${join(dir, 'cache')}`,
      // Downloads land in our cache dir, which the _apt user may not be able to write.
      '-o', 'APT::Sandbox::User=root',
    ],
  };
}

/** Runs `apt-get update` in the private state unless its lists already exist (or `force`). */
export async function ensureAptLists(run: CommandRunner, apt: PrivateApt, force = false): Promise<void> {
  const lists = readdirSync(join(apt.dir, 'lists')).filter((f) => f.endsWith('_Packages'));
  if (lists.length > 0 && !force) return;
  await run.run('apt-get', [...apt.options, '-q', 'update'], { timeoutMs: 300_000 });
}

/** Parses `apt-cache show` output into one record per stanza. */
export function parseStanzas(text: string): Array<Record<string, string>> {
  const out: Array<Record<string, string>> = [];
  for (const block of text.split(/\n\s*\n/)) {
    const record: Record<string, string> = {};
    let last: string | undefined;
    for (const line of block.split('\n')) {
      if (/^\s/.test(line) && last) record[last] += `\n${line.trim()}`;
      else {
        const m = /^([A-Za-z0-9-]+):\s?(.*)$/.exec(line);
        if (m) { last = m[1]!; record[last] = m[2]!; }
      }
    }
    if (record.Package) out.push(record);
  }
  return out;
}

/** Package names of a Depends/Pre-Depends field (first alternative of each, arch qualifiers dropped). */
export function dependencyNames(field: string | undefined): string[] {
  if (!field) return [];
  return field.split(',').map((dep) => dep.split('|')[0]!.trim().split(/[\s(:]/)[0]!).filter((n) => n.length > 0);
}
