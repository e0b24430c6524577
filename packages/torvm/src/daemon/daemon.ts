/**
 * The daemon: wiring only. It builds the parts, serves the local API and runs
 * the lifecycle: once (`torvm up`, which exits when the run ends) or on demand
 * (`service` mode, started and stopped through the API, for the GUI).
 * SIGINT/SIGTERM/SIGHUP (a closed terminal) become a cancel (the kill switch
 * stays on), never a silent death without teardown; an API stop is a
 * user stop (which may release it).
 */
import { bridgeLogSecrets } from '../core/bridge-secrets.ts';
import { serialLineLevel } from '../vm/guest-markers.ts';
import type { TorvmConfig } from '../core/config.ts';
import { TorvmError, describeError, isTorvmError } from '../core/errors.ts';
import { Lifecycle, type LifecycleResult, type StateName } from '../core/lifecycle.ts';
import { startApiServer } from '../api/server.ts';
import { CORE_ROUTES, type DaemonControl, type Route } from '../api/routes.ts';
import { createLogging, type Logging } from '../log/logger.ts';
import { createCommandRunner } from '../platform/exec.ts';
import { createPlatformServices } from '../platform/index.ts';
import type { TorControlClient } from '../tor/index.ts';
import { checkPrivilegesAndPrepareVm } from './prepare-vm.ts';
import { findOrphanQemu } from '../vm/orphan.ts';
import { vmPaths } from '../vm/vm-paths.ts';
import { StatusStore } from './status-store.ts';
import { startLanGateway } from '../gateway/lan-gateway.ts';
import { attachTorStatus } from './tor-features.ts';
import { createDaemonWorks } from './works.ts';

export interface DaemonOptions {
  config: TorvmConfig;
  /** Where the config came from; `updateConfig` writes it back there. */
  configPath: string | null;
  verbose: boolean;
  /** `once`: start now and return when the run ends. `service`: wait for API start/stop until a signal. */
  mode: 'once' | 'service';
  /** Human-facing progress lines (the CLI prints them). */
  progress: (line: string) => void;
  /** Extra API routes (features add theirs here). */
  routes?: readonly Route[];
  /** Called once the API is up (service mode: the GUI starts here). */
  onReady?: (control: DaemonControl) => Promise<void> | void;
}

export interface DaemonResult {
  exitCode: 0 | 1;
  logging: Logging;
}

export async function runDaemon(o: DaemonOptions): Promise<DaemonResult> {
  let config = o.config;
  const logging = createLogging({ level: o.verbose ? 'debug' : config.log.level, stream: o.verbose ? process.stderr : null });
  const log = logging.forComponent('daemon');
  const runner = createCommandRunner((line) => logging.forComponent('exec').debug(line));
  const vmUser = await createPlatformServices(config, runner).ensureVmUser();
  const status = new StatusStore(config.tor.testingNetwork !== undefined);
  const warn = (m: string) => { log.warn(m); o.progress(`warning: ${m}`); };

  let lifecycle: Lifecycle | null = null;
  let currentRun: Promise<LifecycleResult> | null = null;
  let tor: TorControlClient | null = null;

  /** One run of the lifecycle with the config as it is now. */
  function startRun(): Promise<LifecycleResult> {
    if (currentRun) return currentRun;
    const runConfig = config;
    const platform = createPlatformServices(runConfig, runner);
    // Everything the run knows that must never reach a log.
    for (const line of runConfig.tor.bridges.lines) for (const s of bridgeLogSecrets(line)) logging.secrets.add(s);
    if ('password' in runConfig.tor.proxy) logging.secrets.add(runConfig.tor.proxy.password);
    for (const u of runConfig.lanGateway.users) logging.secrets.add(u.password);
    const hostNetwork = platform.hostNetwork({ uid: vmUser.uid, gid: vmUser.gid, log: (line) => logging.forComponent('network').info(line) });
    const vmLog = logging.forComponent('vm');
    const serialLog = logging.forComponent('serial');
    const works = createDaemonWorks({
      config: runConfig, status,
      hostNetwork,
      log: { info: (m) => log.info(m), warn, error: (m) => { log.error(m); o.progress(`error: ${m}`); } },
      addSecret: (s) => logging.secrets.add(s),
      previousVmAlive: () => findOrphanQemu(vmPaths(runConfig.vm.stateDir, platform.runDir), platform.processInspector) !== null,
      onTorConnected: (client) => { tor = client; attachTorStatus(client, status, { log: (m) => log.info(m) }); },
      startLanGateway: () => {
        const gatewayLog = logging.forComponent('gateway');
        return startLanGateway(runConfig, { info: (m) => gatewayLog.info(m), warn: (m) => gatewayLog.warn(m) });
      },
      checkPrivilegesAndPrepareVm: async (signal) => {
        const handle = await checkPrivilegesAndPrepareVm(runConfig, platform, vmUser, { warn, info: (m) => log.info(m) }, (level, message) => vmLog[level](message), signal);
        handle.supervisor.on('serial', (line) => serialLog[serialLineLevel(line)](line));
        return handle;
      },
    });
    status.update((s) => { s.ended = null; s.lastError = null; s.vm.restarts = 0; s.testingNetwork = runConfig.tor.testingNetwork !== undefined; });
    const lc = new Lifecycle(works, {
      lockdown: runConfig.network.lockdown,
      onTransition: (t) => {
        logging.forComponent('lifecycle').info(t.sentence);
        o.progress(t.sentence);
        status.update((s) => { s.state = t.to as StateName; s.since = new Date().toISOString(); });
      },
    });
    lifecycle = lc;
    currentRun = lc.run().then(async (result) => {
      const error = result.error;
      tor = null;
      status.update((s) => {
        s.state = 'Stopped';
        s.ended = { reason: result.reason, keptBlocking: result.keptBlocking };
        if (error !== undefined) s.lastError = { code: isTorvmError(error) ? error.code : 'ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) };
      });
      for (const t of result.teardownErrors) log.error(`${t.state} failed: ${describeError(t.error)}`);
      if (error !== undefined) o.progress(`TorVM stopped after a failure: ${describeError(error)}`);
      // Say what the kernel enforces, not what teardown meant to leave.
      const live = await hostNetwork.killSwitchStatus().catch(() => null);
      if (live?.present) o.progress('The kill switch stays on: the network is blocked.');
      else if (result.keptBlocking) o.progress('WARNING: the kill switch is NOT on although TorVM meant to keep blocking; run `torvm killswitch engage`.');
      else o.progress('Host networking is restored.');
      lifecycle = null;
      currentRun = null;
      return result;
    });
    return currentRun;
  }

  let lastProgress = -1;
  status.on('change', (s) => {
    if (s.bootstrap.progress !== lastProgress && s.state === 'WaitBootstrap') {
      lastProgress = s.bootstrap.progress;
      o.progress(`Tor bootstrap ${s.bootstrap.progress}%: ${s.bootstrap.summary}`);
    }
  });

  const control: DaemonControl = {
    status: () => status.get(),
    subscribe: (listener) => { status.on('change', listener); return () => status.off('change', listener); },
    stop: (req) => lifecycle?.stop(req.kind),
    start: () => { void startRun(); },
    config: () => config,
    updateConfig: async (next) => {
      if (o.configPath === null) throw new TorvmError('ERR_NOT_AVAILABLE', 'no config file to save to: start TorVM with --config FILE');
      const { saveConfigFile } = await import('../platform/config-file.ts');
      await saveConfigFile(o.configPath, next);
      config = next;
    },
    tor: () => tor,
    addSecret: (secret) => logging.secrets.add(secret),
    logs: () => logging.ring.snapshot(),
    subscribeLogs: (listener) => logging.ring.subscribe(listener),
  };
  // Service mode: wait for start/stop through the API, until a signal.
  if (o.mode === 'service') status.update((s) => { s.state = 'Stopped'; });
  const apiGid = await createPlatformServices(config, runner).ensureApiGroup();
  const api = await startApiServer(config.api.socketPath, [...CORE_ROUTES, ...(o.routes ?? [])], control, { gid: apiGid });

  let exitRequested: (() => void) | null = null;
  const exit = new Promise<void>((resolve) => { exitRequested = resolve; });
  const onSignal = (sig: NodeJS.Signals) => {
    log.warn(`${sig}: cancelling; the kill switch stays on (run \`torvm down\` or \`torvm killswitch release\` to open the network)`);
    lifecycle?.stop('cancelled');
    exitRequested?.();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('SIGHUP', onSignal);
  try {
    await o.onReady?.(control);
    if (o.mode === 'once') {
      const result = await startRun();
      return { exitCode: result.reason === 'failed' || result.teardownErrors.length > 0 ? 1 : 0, logging };
    }
    if (config.service.autostart) void startRun();
    await exit;
    // currentRun is set from callbacks; read it through a widened type.
    const pending = currentRun as Promise<LifecycleResult> | null;
    const result = pending ? await pending : null;
    return { exitCode: result && (result.reason === 'failed' || result.teardownErrors.length > 0) ? 1 : 0, logging };
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('SIGHUP', onSignal);
    api.closeAllConnections();
    await new Promise<void>((resolve) => api.close(() => resolve()));
  }
}
