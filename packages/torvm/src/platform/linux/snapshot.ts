/**
 * `ip -json` snapshots of the state TorVM may touch: routes and rules of both
 * families in every table, addresses, links and permanent neighbours. Restore
 * is proven by comparing two snapshots for equality.
 */
import type { CommandRunner } from '../exec.ts';

export interface NetworkSnapshot {
  readonly routes4: unknown;
  readonly routes6: unknown;
  readonly rules4: unknown;
  readonly rules6: unknown;
  readonly addresses: unknown;
  readonly links: unknown;
  readonly neighbours: unknown;
}

const QUERIES: Record<keyof NetworkSnapshot, string[]> = {
  routes4: ['-4', '-json', 'route', 'show', 'table', 'all'],
  routes6: ['-6', '-json', 'route', 'show', 'table', 'all'],
  rules4: ['-4', '-json', 'rule', 'show'],
  rules6: ['-6', '-json', 'rule', 'show'],
  addresses: ['-json', 'addr', 'show'],
  links: ['-json', 'link', 'show'],
  neighbours: ['-json', 'neigh', 'show', 'nud', 'permanent'],
};

export async function takeNetworkSnapshot(runner: CommandRunner, options: { netns?: string } = {}): Promise<NetworkSnapshot> {
  const out: Record<string, unknown> = {};
  for (const [key, args] of Object.entries(QUERIES)) {
    const r = await runner.run('ip', args, { timeoutMs: 10_000, ...(options.netns ? { netns: options.netns } : {}) });
    out[key] = JSON.parse(r.stdout.trim() || '[]');
  }
  return out as unknown as NetworkSnapshot;
}

/** Lines that differ between two snapshots (empty when equal), for test failure messages. */
export function diffSnapshots(a: NetworkSnapshot, b: NetworkSnapshot): string[] {
  const out: string[] = [];
  for (const key of Object.keys(QUERIES) as Array<keyof NetworkSnapshot>) {
    const x = JSON.stringify(a[key]);
    const y = JSON.stringify(b[key]);
    if (x !== y) out.push(`${key}:\n  before ${x}\n  after  ${y}`);
  }
  return out;
}
