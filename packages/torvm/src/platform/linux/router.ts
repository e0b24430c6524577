/**
 * Policy routing on Linux: the rules and the one route of a RoutePlan
 * (see core/route-plan.ts for the design). Never touches the host's own routes.
 */
import { TorvmError } from '../../core/errors.ts';
import { missingRules, routeArgv, ruleArgv, ruleMatches } from '../../core/route-plan.ts';
import type { IpFamily, ObservedRule, RoutePlan } from '../../core/route-plan.ts';
import type { CommandRunner } from '../exec.ts';
import type { Router } from '../host-network.ts';

export interface LinuxRouterOptions {
  netns?: string;
  timeoutMs?: number;
}

interface ObservedRoute { dst?: string; gateway?: string; dev?: string; flags?: string[] }

/** The Linux router; `applyRules` adds only the policy rules (the blocking layer, which needs no TAP). */
export function createLinuxRouter(runner: CommandRunner, options: LinuxRouterOptions = {}): Router & { applyRules(plan: RoutePlan): Promise<string[]> } {
  const ip = (args: string[], okExitCodes: number[] = []) =>
    runner.run('ip', args, { timeoutMs: options.timeoutMs ?? 10_000, okExitCodes, ...(options.netns ? { netns: options.netns } : {}) });

  const rules = async (family: IpFamily) => JSON.parse((await ip([`-${family}`, '-json', 'rule', 'show'])).stdout || '[]') as ObservedRule[];

  async function missingRoutes(plan: RoutePlan): Promise<string[]> {
    const out: string[] = [];
    for (const route of plan.routes) {
      const r = await ip([`-${route.family}`, '-json', 'route', 'show', 'table', String(route.table)], [2]);
      const observed = JSON.parse(r.stdout || '[]') as ObservedRoute[];
      if (!observed.some((o) => o.dst === route.dst && o.gateway === route.gateway && o.dev === route.dev)) out.push(`route ${routeArgv(route, 'replace').slice(3).join(' ')}`);
    }
    return out;
  }

  async function addMissingRules(plan: RoutePlan): Promise<string[]> {
    const added: string[] = [];
    for (const family of [4, 6] as const) {
      for (const rule of missingRules(plan, family, await rules(family))) {
        await ip(ruleArgv(rule, 'add'));
        added.push(`rule ${ruleArgv(rule, 'add').slice(3).join(' ')}`);
      }
    }
    return added;
  }

  return {
    applyRules: addMissingRules,
    async apply(plan) {
      try {
        // The route first: once the rules exist, default lookups already land in its table.
        for (const route of plan.routes) await ip(routeArgv(route, 'replace'));
        await addMissingRules(plan);
      } catch (err) {
        throw new TorvmError('ERR_NETWORK', 'could not route traffic into the VM', { cause: err });
      }
    },
    async drift(plan) {
      const out: string[] = [];
      for (const family of [4, 6] as const) {
        for (const rule of missingRules(plan, family, await rules(family))) out.push(`rule ${ruleArgv(rule, 'add').slice(3).join(' ')}`);
      }
      out.push(...(await missingRoutes(plan)));
      return out;
    },
    async remove(plan) {
      for (const family of [4, 6] as const) {
        const observed = await rules(family);
        for (const rule of plan.rules.filter((r) => r.family === family)) {
          // Delete every copy (a crashed run may have added one twice); exit 2: already gone.
          for (const _ of observed.filter((o) => ruleMatches(rule, o))) await ip(ruleArgv(rule, 'del'), [2]);
        }
      }
      for (const route of plan.routes) {
        // Exit 2: already gone; exit 1 "Cannot find device": gone with its TAP.
        const r = await ip(routeArgv(route, 'del'), [1, 2]);
        if (r.exitCode === 1 && !/Cannot find device/.test(r.stderr)) throw new TorvmError('ERR_NETWORK', `could not remove route ${route.dst} from table ${route.table}: ${r.stderr.trim()}`);
      }
    },
  };
}
