/**
 * The TorVM config: one JSON file, validated by a strict zod schema.
 * Unknown keys are errors. Every string that reaches torrc, the kernel
 * command line, QEMU or a command argv passes a whitelist in validators.ts.
 * Defaults that differ per OS come in as `PlatformDefaults`, so this module
 * never looks at the OS itself.
 */
import { z } from 'zod';
import { parseBridgeLine } from './bridge-line.ts';
import {
  checkAbsolutePath, checkCredential, checkFingerprint, checkHostname, checkInterfaceName,
  checkIPv4, checkIPv4Cidr, checkNodeSpec, checkPort,
} from './validators.ts';

export const ACCELERATORS = ['auto', 'kvm', 'hvf', 'whpx', 'tcg'] as const;
export type Accel = (typeof ACCELERATORS)[number];
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The OS-dependent defaults; supplied by platform/<os>/defaults.ts. */
export interface PlatformDefaults {
  stateDir: string;
  imageDir: string;
  qemuBinary: string;
  apiSocketPath: string;
}

const fromCheck = <T>(check: (v: T) => string | null) => (v: T, ctx: z.RefinementCtx) => {
  const problem = check(v);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
};

const absPath = z.string().superRefine(fromCheck(checkAbsolutePath));
const ipv4 = z.string().superRefine(fromCheck(checkIPv4));
const cidr = z.string().superRefine(fromCheck(checkIPv4Cidr));
const port = z.number().superRefine(fromCheck(checkPort));
const hostname = z.string().superRefine(fromCheck(checkHostname));
const nodeSpec = z.string().superRefine(fromCheck(checkNodeSpec));
const fingerprint = z.string().superRefine(fromCheck(checkFingerprint));
const username = z.string().superRefine(fromCheck((v: string) => checkCredential(v, 'username')));
const password = z.string().superRefine(fromCheck((v: string) => checkCredential(v, 'password')));
const bridgeLine = z.string().superRefine((v, ctx) => {
  const parsed = parseBridgeLine(v);
  if (!parsed.ok) ctx.addIssue({ code: 'custom', message: `bridge line ${parsed.error}` });
});
const nickname = z.string().regex(/^[A-Za-z0-9]{1,19}$/, 'must be 1–19 letters or digits (a Tor nickname)');

const proxySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('none') }),
  z.strictObject({
    /** Tor's HTTPSProxy: an HTTP proxy that supports CONNECT (Tor never sends plain HTTP through it). */
    type: z.literal('https'), host: hostname, port, username: username.optional(), password: password.optional(),
  }),
  z.strictObject({ type: z.literal('socks5'), host: hostname, port, username: username.optional(), password: password.optional() }),
  z.strictObject({ type: z.literal('socks4'), host: hostname, port }),
]).superRefine((p, ctx) => {
  if ('username' in p && (p.username === undefined) !== (p.password === undefined)) {
    ctx.addIssue({ code: 'custom', path: [p.username === undefined ? 'username' : 'password'], message: 'username and password must be given together' });
  }
});

/** One directory authority of a private test network (TestingTorNetwork). */
const dirAuthoritySchema = z.strictObject({
  nickname,
  address: ipv4,
  orPort: port,
  dirPort: port,
  /** The authority's v3 identity (the fingerprint of its authority certificate key). */
  v3ident: fingerprint,
  /** The relay identity fingerprint. */
  fingerprint,
});

/** Extra torrc directives a user may set: a small allowlist, each with its own grammar. */
const extraTorOptionsSchema = z.strictObject({
  NumEntryGuards: z.int().min(1).max(10).optional(),
  CircuitBuildTimeout: z.int().min(10).max(600).optional(),
  MaxCircuitDirtiness: z.int().min(60).max(86_400).optional(),
  NewCircuitPeriod: z.int().min(10).max(86_400).optional(),
  ConnectionPadding: z.enum(['auto', '0', '1']).optional(),
  ReducedConnectionPadding: z.boolean().optional(),
  SafeLogging: z.enum(['0', '1', 'relay']).optional(),
  LongLivedPorts: z.array(port).max(32).optional(),
});

const nodeList = z.array(nodeSpec).max(64).prefault([]);

/** Builds the config schema with this platform's defaults. */
export function createConfigSchema(defaults: PlatformDefaults) {
  return z.strictObject({
    configVersion: z.literal(1),
    vm: z.strictObject({
      accel: z.enum(ACCELERATORS).prefault('auto'),
      memoryMiB: z.int().min(64).max(4096).prefault(128),
      cpus: z.int().min(1).max(8).prefault(1),
      qemuBinary: absPath.prefault(defaults.qemuBinary),
      imageDir: absPath.prefault(defaults.imageDir),
      stateDir: absPath.prefault(defaults.stateDir),
      /** Kernel command-line parameters the guest understands; nothing free-form. */
      kernelParams: z.strictObject({
        loglevel: z.int().min(0).max(7).prefault(4),
        debug: z.boolean().prefault(false),
      }).prefault({}),
    }).prefault({}),
    network: z.strictObject({
      tapName: z.string().superRefine(fromCheck(checkInterfaceName)).prefault('torvm0'),
      hostAddress: ipv4.prefault('10.10.10.2'),
      vmAddress: ipv4.prefault('10.10.10.1'),
      /**
       * Routing table that holds TorVM's default route into the VM. Policy rules in
       * front of main send everyone but the torvm user (QEMU) there, so a DHCP or
       * router-advertisement default route can never win (see docs/security.md).
       */
      bypassTable: z.int().min(1).max(2_147_483_647).prefault(7911),
      /** Let the host reach its local subnets directly (never port 53). Off by default. */
      allowLan: z.boolean().prefault(false),
      /** The subnets "allow LAN" opens; empty means the RFC 1918 and link-local ranges. */
      lanSubnets: z.array(cidr).max(32).prefault([]),
      /** Keep blocking even after an explicit stop. */
      lockdown: z.boolean().prefault(false),
    }).superRefine((n, ctx) => {
      const hostNet = n.hostAddress.split('.').slice(0, 3).join('.');
      const vmNet = n.vmAddress.split('.').slice(0, 3).join('.');
      const hostLast = Number(n.hostAddress.split('.')[3]);
      const vmLast = Number(n.vmAddress.split('.')[3]);
      // Both ends must be the two usable addresses of one /30.
      if (hostNet !== vmNet || (hostLast & ~3) !== (vmLast & ~3) || hostLast % 4 === 0 || vmLast % 4 === 0 || hostLast % 4 === 3 || vmLast % 4 === 3 || hostLast === vmLast) {
        ctx.addIssue({ code: 'custom', path: ['vmAddress'], message: 'hostAddress and vmAddress must be the two usable addresses of one /30' });
      }
    }).prefault({}),
    tor: z.strictObject({
      socksPort: port.prefault(9050),
      controlPort: port.prefault(9051),
      transPort: port.prefault(9095),
      dnsPort: port.prefault(9093),
      bridges: z.strictObject({
        enabled: z.boolean().prefault(false),
        /** Use the publicly listed default bridges shipped with TorVM. */
        useBuiltin: z.boolean().prefault(false),
        lines: z.array(bridgeLine).max(64).prefault([]),
      }).superRefine((b, ctx) => {
        if (b.enabled && !b.useBuiltin && b.lines.length === 0) {
          ctx.addIssue({ code: 'custom', path: ['lines'], message: 'bridges are enabled, but no bridge line is given and useBuiltin is off' });
        }
      }).prefault({}),
      proxy: proxySchema.prefault({ type: 'none' }),
      nodes: z.strictObject({
        entry: nodeList, exit: nodeList, exclude: nodeList, excludeExit: nodeList,
        strict: z.boolean().prefault(false),
      }).prefault({}),
      extra: extraTorOptionsSchema.prefault({}),
      /** A private test network (TestingTorNetwork). Never set for real use. */
      testingNetwork: z.strictObject({
        authorities: z.array(dirAuthoritySchema).min(1).max(9),
      }).optional(),
    }).superRefine((t, ctx) => {
      const ports = [t.socksPort, t.controlPort, t.transPort, t.dnsPort];
      if (new Set(ports).size !== ports.length) ctx.addIssue({ code: 'custom', path: ['socksPort'], message: 'socksPort, controlPort, transPort and dnsPort must all differ' });
    }).prefault({}),
    /**
     * Lets other devices on the LAN use this TorVM (off by default): SOCKS5
     * with a required user name and password, and DNS, on one LAN address,
     * only from the listed subnets. The kill switch opens exactly these ports.
     */
    lanGateway: z.strictObject({
      enabled: z.boolean().prefault(false),
      listenAddress: ipv4.optional(),
      socksPort: port.prefault(9050),
      dnsPort: port.prefault(53),
      allowedSubnets: z.array(cidr).max(32).prefault([]),
      users: z.array(z.strictObject({ username, password })).max(64).prefault([]),
      /** New connections per client address per minute. */
      rateLimitPerMinute: z.int().min(1).max(100_000).prefault(600),
    }).superRefine((g, ctx) => {
      if (!g.enabled) return;
      if (g.listenAddress === undefined) ctx.addIssue({ code: 'custom', path: ['listenAddress'], message: 'is required when the LAN gateway is enabled' });
      if (g.allowedSubnets.length === 0) ctx.addIssue({ code: 'custom', path: ['allowedSubnets'], message: 'must list at least one client subnet when the LAN gateway is enabled' });
      if (g.users.length === 0) ctx.addIssue({ code: 'custom', path: ['users'], message: 'must list at least one user: without authentication no one on the LAN may use the gateway' });
    }).prefault({}),
    api: z.strictObject({
      socketPath: absPath.prefault(defaults.apiSocketPath),
      /** Loopback port of the GUI; 0 picks a free port at each start. */
      guiPort: z.int().min(0).max(65535).prefault(0),
    }).prefault({}),
    log: z.strictObject({
      level: z.enum(LOG_LEVELS).prefault('info'),
    }).prefault({}),
    service: z.strictObject({
      autostart: z.boolean().prefault(false),
    }).prefault({}),
  });
}

export type ConfigSchema = ReturnType<typeof createConfigSchema>;
export type TorvmConfig = z.output<ConfigSchema>;
export type TorvmConfigInput = z.input<ConfigSchema>;
export type ProxyConfig = TorvmConfig['tor']['proxy'];
export type DirAuthority = z.output<typeof dirAuthoritySchema>;

/** One validation problem, named by its JSON path (e.g. `tor.bridges.lines[2]`). */
export interface ConfigProblem {
  path: string;
  message: string;
}

export type ConfigResult = { ok: true; config: TorvmConfig } | { ok: false; problems: ConfigProblem[] };

export function formatJsonPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out === '' ? '(root)' : out;
}

/** Validates parsed JSON. Never throws; lists every problem. */
export function validateConfig(input: unknown, defaults: PlatformDefaults): ConfigResult {
  const result = createConfigSchema(defaults).safeParse(input);
  if (result.success) return { ok: true, config: result.data };
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) problems.push({ path: formatJsonPath([...issue.path, key]), message: 'is not a known setting' });
    } else {
      problems.push({ path: formatJsonPath(issue.path), message: issue.message });
    }
  }
  problems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  return { ok: false, problems };
}

/** The config a fresh install uses: every default, nothing else. */
export function defaultConfig(defaults: PlatformDefaults): TorvmConfig {
  const result = validateConfig({ configVersion: 1 }, defaults);
  if (!result.ok) throw new Error(`default config is invalid: ${JSON.stringify(result.problems)}`);
  return result.config;
}

/** JSON Schema of the config file (for editors and `torvm config schema`). */
export function configJsonSchema(defaults: PlatformDefaults): unknown {
  return z.toJSONSchema(createConfigSchema(defaults), { io: 'input', unrepresentable: 'any' });
}

const MASK = '********';

/** A copy safe to print: passwords and bridge lines masked. */
export function maskSecrets(config: TorvmConfig): TorvmConfig {
  const copy = structuredClone(config);
  copy.tor.bridges.lines = copy.tor.bridges.lines.map((line) => {
    const parsed = parseBridgeLine(line);
    return parsed.ok ? `${parsed.bridge.transport} ${MASK}` : MASK;
  });
  if ('password' in copy.tor.proxy && copy.tor.proxy.password !== undefined) copy.tor.proxy.password = MASK;
  copy.lanGateway.users = copy.lanGateway.users.map((u) => ({ ...u, password: MASK }));
  return copy;
}
