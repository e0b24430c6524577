/**
 * An in-memory host for tests of code that drives host networking (the
 * lifecycle, the daemon): Firewall, Router, Dns, TapLink and Journal over
 * plain state, printed as text the way an operator would read it
 * (Tailscale-style), with failure injection per operation.
 */
import { TorvmError } from '../../core/errors.ts';
import { describePolicy } from '../../core/policy.ts';
import type { FirewallPolicy } from '../../core/policy.ts';
import { routeArgv, ruleArgv } from '../../core/route-plan.ts';
import type { RoutePlan, RouteSpec, RuleSpec } from '../../core/route-plan.ts';

/** `-4 pref 7900 uidrange …`: the argv without the verb. */
const withoutVerb = (argv: string[]) => [argv[0], ...argv.slice(3)].join(' ');
const ruleText = (r: RuleSpec) => withoutVerb(ruleArgv(r, 'add'));
const routeText = (r: RouteSpec) => withoutVerb(routeArgv(r, 'replace'));
import type { Dns, DnsSnapshot, Firewall, Journal, NetworkJournal, Router, TapLink } from '../host-network.ts';

export type FakeOperation = 'firewall.apply' | 'firewall.reset' | 'router.apply' | 'router.remove' | 'dns.apply' | 'dns.restore' | 'tap.create' | 'tap.destroy' | 'journal.write';

export class FakeHostNetwork {
  policy: FirewallPolicy | null = null;
  rules: string[] = [];
  routes: string[] = [];
  taps = new Map<string, string>();
  resolvConf = 'nameserver 192.168.1.1\n';
  journalValue: NetworkJournal | null = null;
  /** Every operation, in order: the transcript tests assert on. */
  readonly calls: string[] = [];
  readonly #failures = new Set<FakeOperation>();

  /** Makes the next call of `op` throw ERR_COMMAND_FAILED. */
  failNext(op: FakeOperation): void {
    this.#failures.add(op);
  }

  #call(op: FakeOperation, detail = ''): void {
    this.calls.push(detail ? `${op} ${detail}` : op);
    if (this.#failures.delete(op)) throw new TorvmError('ERR_COMMAND_FAILED', `fake: ${op} failed (injected)`);
  }

  /** The whole host state as text. */
  render(): string {
    return [
      `kill switch: ${this.policy ? `${this.policy.state}: ${describePolicy(this.policy)}` : 'off'}`,
      `links: ${[...this.taps.entries()].map(([n, d]) => `${n} (${d})`).join(', ') || '-'}`,
      ...this.rules.map((r) => `rule: ${r}`),
      ...this.routes.map((r) => `route: ${r}`),
      `resolv.conf: ${this.resolvConf.trim().split('\n').join(' | ')}`,
      `journal: ${this.journalValue ? `steps ${this.journalValue.steps.join(',') || '-'}` : 'none'}`,
    ].join('\n');
  }

  readonly firewall: Firewall = {
    apply: async (policy) => {
      this.#call('firewall.apply', policy.state);
      this.policy = policy;
    },
    verify: async (policy) => {
      if (this.policy?.state !== policy.state) throw new TorvmError('ERR_FIREWALL', `fake: live ${this.policy?.state ?? 'none'} != ${policy.state}`);
    },
    reset: async () => {
      this.#call('firewall.reset');
      this.policy = null;
    },
    status: async () => ({ present: this.policy !== null, state: this.policy?.state ?? null, fingerprint: null }),
  };

  readonly router: Router = {
    apply: async (plan: RoutePlan) => {
      this.#call('router.apply');
      for (const r of plan.rules) if (!this.rules.includes(ruleText(r))) this.rules.push(ruleText(r));
      for (const r of plan.routes) if (!this.routes.includes(routeText(r))) this.routes.push(routeText(r));
    },
    drift: async (plan: RoutePlan) => [
      ...plan.rules.map((r) => ruleText(r)).filter((r) => !this.rules.includes(r)),
      ...plan.routes.map((r) => routeText(r)).filter((r) => !this.routes.includes(r)),
    ],
    remove: async () => {
      this.#call('router.remove');
      this.rules = [];
      this.routes = [];
    },
  };

  readonly dns: Dns = {
    snapshot: async (): Promise<DnsSnapshot> => ({ kind: 'resolv-conf', path: '/etc/resolv.conf', symlinkTarget: null, content: this.resolvConf, mode: 0o644 }),
    apply: async (nameserver) => {
      this.#call('dns.apply', nameserver);
      this.resolvConf = `nameserver ${nameserver}\n`;
    },
    intact: async (nameserver) => this.resolvConf === `nameserver ${nameserver}\n`,
    restore: async (saved) => {
      this.#call('dns.restore');
      if (saved.kind === 'resolv-conf' && saved.content !== null) this.resolvConf = saved.content;
    },
  };

  readonly tap: TapLink = {
    create: async (plan) => {
      this.#call('tap.create', plan.tap.name);
      this.taps.set(plan.tap.name, `${plan.tap.hostCidr}, ${plan.tap.vmAddress} is ${plan.tap.vmMac}`);
    },
    exists: async (name) => this.taps.has(name),
    destroy: async (name) => {
      this.#call('tap.destroy', name);
      this.taps.delete(name);
    },
  };

  readonly journal: Journal = {
    read: async () => this.journalValue,
    write: async (j) => {
      this.#call('journal.write');
      this.journalValue = structuredClone(j);
    },
    clear: async () => {
      this.journalValue = null;
    },
  };
}
