import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Lifecycle, STATES, TEARDOWN, LIFECYCLE, type LifecycleWorks, type StateName, type StateContext, type TeardownState } from '../../src/core/lifecycle.ts';
import { TorvmError, isTorvmError } from '../../src/core/errors.ts';

const SETUP = STATES.filter((s) => !TEARDOWN.includes(s as TeardownState));

/**
 * A fake host: the firewall is 'open' until EngageKillSwitch. RestoreNetwork
 * opens it only when told it may, and otherwise leaves it blocking, even
 * when the run failed before the kill switch went in: the user asked for
 * protection, so a failed start must not leave traffic flowing.
 */
function fakeHost(overrides: Partial<Record<StateName, (ctx: StateContext) => Promise<unknown>>> = {}) {
  const host = { firewall: 'open' as 'open' | 'engaged' | 'blocked', counts: new Map<StateName, number>(), endings: [] as unknown[] };
  const works = {} as LifecycleWorks;
  for (const s of STATES) {
    works[s] = async (ctx) => {
      host.counts.set(s, (host.counts.get(s) ?? 0) + 1);
      if (s === 'EngageKillSwitch') host.firewall = 'engaged';
      if (s === 'RestoreNetwork') {
        host.endings.push(ctx.ending);
        host.firewall = ctx.ending?.keepBlocking ? 'blocked' : 'open';
      }
      const o = overrides[s];
      if (o) await o(ctx);
      else if (s === 'Running') await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
    };
  }
  return { host, works };
}

function assertTeardownOnce(visited: StateName[], counts: Map<StateName, number>) {
  assert.deepEqual(visited.slice(-3), ['Shutdown', 'RestoreNetwork', 'Cleanup']);
  for (const t of TEARDOWN) {
    assert.equal(visited.filter((v) => v === t).length, 1, `${t} entered once`);
    assert.equal(counts.get(t), 1, `${t} ran once`);
  }
}

test('the table: every state has a successor path to Cleanup and teardown is last', () => {
  assert.equal(LIFECYCLE.Cleanup.next, null);
  for (const s of STATES) {
    let cur: StateName | null = s;
    const seen = new Set<StateName>();
    while (cur !== null && !seen.has(cur)) { seen.add(cur); cur = LIFECYCLE[cur].next; }
    assert.ok(seen.has('Cleanup'), `${s} reaches Cleanup`);
  }
  // The kill switch goes in before any route, DNS or VM change.
  const order = SETUP as readonly string[];
  for (const later of ['CreateTAP', 'LaunchVM', 'ConfigureTAP', 'FlushDNS']) {
    assert.ok(order.indexOf('EngageKillSwitch') < order.indexOf(later));
  }
});

test('a clean run, then a user stop, releases the kill switch', async () => {
  const { host, works } = fakeHost();
  const transitions: string[] = [];
  const lc = new Lifecycle(works, { lockdown: false, onTransition: (t) => {
    transitions.push(t.sentence);
    if (t.to === 'Running') setImmediate(() => lc.stop('user-stop'));
  } });
  const r = await lc.run();
  assert.equal(r.reason, 'user-stop');
  assert.equal(r.keptBlocking, false);
  assert.equal(host.firewall, 'open');
  assert.deepEqual(r.visited, SETUP.filter((s) => s !== 'Recover').concat(TEARDOWN));
  assertTeardownOnce(r.visited, host.counts);
  assert.match(transitions[3] ?? '', /^SaveNetwork -> EngageKillSwitch: engaging the kill switch/);
});

test('lockdown keeps blocking even after a user stop', async () => {
  const { host, works } = fakeHost();
  const lc = new Lifecycle(works, { lockdown: true, onTransition: (t) => { if (t.to === 'Running') setImmediate(() => lc.stop('user-stop')); } });
  const r = await lc.run();
  assert.equal(r.keptBlocking, true);
  assert.equal(host.firewall, 'blocked');
});

test('a user stop whose Shutdown fails (or times out) keeps blocking: the VM is not known to be gone', async () => {
  for (const shutdown of [
    async () => { throw new TorvmError('ERR_VM', 'QEMU did not exit after SIGKILL'); },
    () => new Promise<void>(() => {}),
  ]) {
    const { host, works } = fakeHost({ Shutdown: shutdown });
    const lc = new Lifecycle(works, { lockdown: false, timeouts: { Shutdown: 50 }, onTransition: (t) => { if (t.to === 'Running') setImmediate(() => lc.stop('user-stop')); } });
    const r = await lc.run();
    assert.equal(r.reason, 'user-stop');
    assert.equal(r.keptBlocking, true);
    assert.equal(host.firewall, 'blocked');
    assert.deepEqual(r.teardownErrors.map((e) => e.state), ['Shutdown']);
  }
});

test('Init may branch to Recover when a crashed run left a journal', async () => {
  const { works } = fakeHost({ Init: async () => {} });
  works.Init = async () => ({ goto: 'Recover' });
  const lc = new Lifecycle(works, { lockdown: false, onTransition: (t) => { if (t.to === 'Running') setImmediate(() => lc.stop('user-stop')); } });
  const r = await lc.run();
  assert.deepEqual(r.visited.slice(0, 3), ['Init', 'Recover', 'CheckPrivileges']);
});

test('a state may not jump to a state the table does not allow', async () => {
  const { works } = fakeHost();
  works.LaunchVM = async () => ({ goto: 'Running' });
  const r = await new Lifecycle(works, { lockdown: false }).run();
  assert.equal(r.reason, 'failed');
  assert.ok(isTorvmError(r.error, 'ERR_INTERNAL'));
});

test('Running restarts the VM through LaunchVM, within a bound', async () => {
  const { host, works } = fakeHost({ Running: async () => {} });
  works.Running = async () => ({ goto: 'LaunchVM' });
  const r = await new Lifecycle(works, { lockdown: false, maxVmRestarts: 3 }).run();
  assert.equal(r.reason, 'failed');
  assert.ok(isTorvmError(r.error, 'ERR_VM'));
  assert.equal(host.counts.get('LaunchVM'), 4);
  assert.equal(host.firewall, 'blocked');
  assertTeardownOnce(r.visited, host.counts);
});

for (const failing of SETUP) {
  test(`a failure in ${failing} ends through teardown once and never releases the kill switch`, async () => {
    const boom = new TorvmError('ERR_VM', `injected failure in ${failing}`);
    const { host, works } = fakeHost({ [failing]: async () => { throw boom; } });
    if (failing === 'Recover') works.Init = async () => ({ goto: 'Recover' });
    const r = await new Lifecycle(works, { lockdown: false }).run();
    assert.equal(r.reason, 'failed');
    assert.equal(r.error, boom);
    assert.equal(r.keptBlocking, true);
    assert.equal(host.firewall, 'blocked', 'the kill switch is never dropped on failure');
    assertTeardownOnce(r.visited, host.counts);
    assert.equal(r.visited[r.visited.length - 4], failing);
  });
}

for (const failing of TEARDOWN) {
  test(`a failure in teardown state ${failing} still runs the other teardown states once`, async () => {
    const { host, works } = fakeHost({ [failing]: async () => { throw new Error('teardown broke'); } });
    const lc = new Lifecycle(works, { lockdown: false, onTransition: (t) => { if (t.to === 'Running') setImmediate(() => lc.stop('cancelled')); } });
    const r = await lc.run();
    assertTeardownOnce(r.visited, host.counts);
    assert.deepEqual(r.teardownErrors.map((e) => e.state), [failing]);
    assert.equal(r.keptBlocking, true);
  });
}

for (const cancelled of SETUP) {
  for (const cooperative of [true, false]) {
    test(`a cancel in ${cancelled} (${cooperative ? 'state honours its signal' : 'state ignores its signal'}) ends through teardown and keeps blocking`, async () => {
      const { host, works } = fakeHost({
        [cancelled]: (ctx: StateContext) => cooperative
          ? new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true }))
          : new Promise(() => {}),
      });
      if (cancelled === 'Recover') works.Init = async () => ({ goto: 'Recover' });
      const lc = new Lifecycle(works, { lockdown: false, onTransition: (t) => { if (t.to === cancelled) setImmediate(() => lc.stop('cancelled')); } });
      const r = await lc.run();
      assert.equal(r.reason, 'cancelled');
      assert.equal(r.keptBlocking, true);
      assert.equal(host.firewall, 'blocked');
      assertTeardownOnce(r.visited, host.counts);
      assert.equal(r.visited[r.visited.length - 4], cancelled);
    });
  }
}

test('a state that exceeds its timeout fails the run with ERR_STATE_TIMEOUT', async () => {
  const { host, works } = fakeHost({ WaitBootstrap: () => new Promise(() => {}) });
  const r = await new Lifecycle(works, { lockdown: false, timeouts: { WaitBootstrap: 20 } }).run();
  assert.equal(r.reason, 'failed');
  assert.ok(isTorvmError(r.error, 'ERR_STATE_TIMEOUT'));
  assert.equal(host.firewall, 'blocked');
});

test('a stop before run() starts ends at once through teardown', async () => {
  const { host, works } = fakeHost();
  const lc = new Lifecycle(works, { lockdown: false });
  lc.stop('user-stop');
  const r = await lc.run();
  assert.deepEqual(r.visited, ['Shutdown', 'RestoreNetwork', 'Cleanup']);
  assertTeardownOnce(r.visited, host.counts);
});

test('a second stop request and a second run are handled', async () => {
  const { works } = fakeHost();
  const lc = new Lifecycle(works, { lockdown: false, onTransition: (t) => { if (t.to === 'Running') setImmediate(() => { lc.stop('cancelled'); lc.stop('user-stop'); }); } });
  const r = await lc.run();
  assert.equal(r.reason, 'cancelled', 'the first request wins');
  await assert.rejects(lc.run(), (e) => isTorvmError(e, 'ERR_INTERNAL'));
});

test('a VM that stayed up for the stable time is always restarted; quick crashes in a row end the run', async () => {
  let clock = 0;
  let runs = 0;
  const { host, works } = fakeHost();
  // Each Running lasts 20 s of fake time, then the VM dies; after 8 such deaths the user stops.
  works.Running = async (ctx) => {
    runs += 1;
    clock += 20_000;
    if (runs <= 8) return { goto: 'LaunchVM' };
    await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve, { once: true }));
  };
  const lc = new Lifecycle(works, { lockdown: false, maxVmRestarts: 3, vmStableMs: 10_000, now: () => clock, onTransition: (t) => { if (t.to === 'Running' && runs === 8) setImmediate(() => lc.stop('user-stop')); } });
  const r = await lc.run();
  assert.equal(r.reason, 'user-stop', 'stable VMs are restarted however often they die');
  assert.equal(host.counts.get('LaunchVM'), 9);
});
