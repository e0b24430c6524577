import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { BootstrapMonitor, describeBootstrapProblem, type BootstrapSource } from '../../src/tor/bootstrap-monitor.ts';
import type { ControlClientState } from '../../src/tor/control-client.ts';
import { parseBootstrapStatus, parseEvent, type TorEvent, type TorEventName } from '../../src/tor/events.ts';
import { ControlReplyParser } from '../../src/tor/reply-parser.ts';
import { isTorvmError, type TorvmError } from '../../src/core/errors.ts';

const LONG_MS = 10_000;

/** Stands in for TorControlClient: events are typed on the wire format Tor uses. */
class FakeSource implements BootstrapSource {
  phase = 'NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"';
  readonly enabled: TorEventName[][] = [];
  getInfoCalls = 0;
  private readonly eventListeners = new Set<(event: TorEvent) => void>();
  private readonly stateListeners = new Set<(state: ControlClientState) => void>();

  onEvent(listener: (event: TorEvent) => void): () => void {
    this.eventListeners.add(listener);
    return () => this.eventListeners.delete(listener);
  }
  onStateChange(listener: (state: ControlClientState) => void): () => void {
    this.stateListeners.add(listener);
    return () => this.stateListeners.delete(listener);
  }
  async getInfo(keys: readonly string[]): Promise<Map<string, string>> {
    this.getInfoCalls++;
    assert.deepEqual(keys, ['status/bootstrap-phase']);
    return new Map([['status/bootstrap-phase', this.phase]]);
  }
  async enableEvents(events: readonly TorEventName[]): Promise<void> {
    this.enabled.push([...events]);
  }
  /** Delivers one "650 ..." line. */
  emit(line: string): void {
    const [message] = new ControlReplyParser().push(`650 ${line}\r\n`);
    assert.ok(message);
    for (const listener of this.eventListeners) listener(parseEvent(message));
  }
  setState(state: ControlClientState): void {
    for (const listener of this.stateListeners) listener(state);
  }
}

const progress = (n: number, tag: string, summary: string): string =>
  `STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=${n} TAG=${tag} SUMMARY="${summary}"`;
const REFUSED_WARN = 'STATUS_CLIENT WARN BOOTSTRAP PROGRESS=10 TAG=conn_done SUMMARY="Connected to a relay" ' +
  'WARNING="Connection refused" REASON=CONNECTREFUSED COUNT=12 RECOMMENDATION=warn HOSTID="AAAA" HOSTADDR="192.0.2.1:443"';
const REFUSED_IGNORE = REFUSED_WARN.replace('RECOMMENDATION=warn', 'RECOMMENDATION=ignore').replace('COUNT=12', 'COUNT=1');

async function started(): Promise<{ source: FakeSource; monitor: BootstrapMonitor }> {
  const source = new FakeSource();
  const monitor = new BootstrapMonitor(source);
  await monitor.start();
  return { source, monitor };
}

const bootstrapError = (pattern: RegExp) => (err: unknown): boolean => {
  assert.ok(isTorvmError(err, 'ERR_BOOTSTRAP'), String(err));
  assert.match((err as TorvmError).message, pattern);
  return true;
};

describe('BootstrapMonitor', () => {
  it('subscribes to its events, seeds from GETINFO and resolves at 100%', async () => {
    const source = new FakeSource();
    source.phase = 'NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"';
    const monitor = new BootstrapMonitor(source);
    const seeded = await monitor.start();
    assert.deepEqual(source.enabled, [['STATUS_CLIENT', 'STATUS_GENERAL', 'WARN']]);
    assert.deepEqual([seeded.progress, seeded.tag, seeded.summary, seeded.done], [5, 'conn', 'Connecting to a relay', false]);
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS });
    source.emit(progress(50, 'loading_descriptors', 'Loading relay descriptors'));
    assert.equal(monitor.snapshot.progress, 50);
    source.emit(progress(100, 'done', 'Done'));
    const done = await waiting;
    assert.deepEqual([done.progress, done.tag, done.done], [100, 'done', true]);
  });

  it('resolves at once when Tor is already bootstrapped', async () => {
    const source = new FakeSource();
    source.phase = 'NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"';
    const monitor = new BootstrapMonitor(source);
    await monitor.start();
    assert.equal((await monitor.waitUntilBootstrapped({ stallTimeoutMs: 1 })).done, true);
  });

  it('ignores late, lower progress events on the same connection', async () => {
    const { source, monitor } = await started();
    source.emit(progress(75, 'enough_dirinfo', 'Loaded enough directory info to build circuits'));
    source.emit(progress(50, 'loading_descriptors', 'Loading relay descriptors'));
    assert.equal(monitor.snapshot.progress, 75);
  });

  it('fails at once, in Tor\'s words, on a problem Tor recommends warning about', async () => {
    const { source, monitor } = await started();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS });
    source.emit(REFUSED_WARN);
    await assert.rejects(waiting, bootstrapError(/Connection refused \(reason CONNECTREFUSED, host 192\.0\.2\.1:443, seen 12 times\)/));
    assert.equal(monitor.snapshot.lastProblem?.reason, 'CONNECTREFUSED');
  });

  it('records problems Tor says to ignore, keeps waiting, and finishes', async () => {
    const { source, monitor } = await started();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS });
    source.emit(REFUSED_IGNORE);
    assert.equal(monitor.snapshot.lastProblem?.recommendation, 'ignore');
    source.emit(progress(100, 'done', 'Done'));
    assert.equal((await waiting).done, true);
  });

  it('failOn "any" fails on an ignorable problem; "never" lets only the stall timer end the wait', async () => {
    const a = await started();
    const any = a.monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS, failOn: 'any' });
    a.source.emit(REFUSED_IGNORE);
    await assert.rejects(any, bootstrapError(/Connection refused/));

    const b = await started();
    const never = b.monitor.waitUntilBootstrapped({ stallTimeoutMs: 50, failOn: 'never' });
    b.source.emit(REFUSED_WARN);
    await assert.rejects(never, bootstrapError(/no bootstrap progress.*last problem: .*Connection refused/));
  });

  it('reports a stall with the phase, the last problem and the last Tor warning', async () => {
    const { source, monitor } = await started();
    source.emit(progress(10, 'conn_done', 'Connected to a relay'));
    source.emit(REFUSED_IGNORE);
    source.emit('WARN Problem bootstrapping. Stuck at 10% (conn_done): Connected to a relay.');
    await assert.rejects(monitor.waitUntilBootstrapped({ stallTimeoutMs: 50 }), (err: unknown) => {
      bootstrapError(/stuck at 10% \(conn_done: Connected to a relay\)/)(err);
      const message = (err as TorvmError).message;
      assert.match(message, /last problem: .*Connection refused/);
      assert.match(message, /last Tor warning: Problem bootstrapping\. Stuck at 10%/);
      assert.equal((err as TorvmError).details?.progress, 10);
      return true;
    });
  });

  it('fails on Tor\'s clock-skew report', async () => {
    const { source, monitor } = await started();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS });
    source.emit('STATUS_GENERAL WARN CLOCK_SKEW SKEW=-7200 SOURCE=CONSENSUS');
    await assert.rejects(waiting, bootstrapError(/clock skew of -7200 s \(source CONSENSUS\)/));
    assert.equal(monitor.snapshot.lastProblem?.source, 'clock-skew');
  });

  it('fails on a pluggable-transport failure warning', async () => {
    const { source, monitor } = await started();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS });
    source.emit("WARN Managed proxy at '/usr/bin/obfs4proxy' failed at launch.");
    await assert.rejects(waiting, bootstrapError(/pluggable transport failure: Managed proxy/));
  });

  it('re-seeds after a reconnect, even backwards (Tor may have restarted)', async () => {
    const { source, monitor } = await started();
    source.emit(progress(80, 'ap_conn', 'Connecting to a relay to build circuits'));
    source.phase = 'NOTICE BOOTSTRAP PROGRESS=0 TAG=starting SUMMARY="Starting"';
    const reseeded = new Promise<void>((resolve) => monitor.onChange((s) => s.progress === 0 && resolve()));
    source.setState('ready');
    await reseeded;
    assert.equal(source.getInfoCalls, 2);
    assert.equal(monitor.snapshot.progress, 0);
  });

  it('ends the wait with ERR_CANCELLED on abort', async () => {
    const { monitor } = await started();
    const controller = new AbortController();
    const waiting = monitor.waitUntilBootstrapped({ stallTimeoutMs: LONG_MS, signal: controller.signal });
    controller.abort();
    await assert.rejects(waiting, (err: unknown) => isTorvmError(err, 'ERR_CANCELLED'));
  });

  it('stops listening after stop()', async () => {
    const { source, monitor } = await started();
    monitor.stop();
    source.emit(progress(100, 'done', 'Done'));
    assert.equal(monitor.snapshot.progress, 0);
  });
});

describe('describeBootstrapProblem', () => {
  it('builds one sentence from Tor\'s fields', () => {
    const status = parseBootstrapStatus(REFUSED_WARN.replace('STATUS_CLIENT ', ''));
    assert.ok(status);
    assert.equal(describeBootstrapProblem(status),
      'Tor reports a bootstrap problem at 10% (conn_done: Connected to a relay): Connection refused (reason CONNECTREFUSED, host 192.0.2.1:443, seen 12 times)');
  });
});
