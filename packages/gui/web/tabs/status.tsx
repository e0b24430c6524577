/** Status: the lifecycle diagram, bootstrap, kill switch, circuits, exit, bandwidth, and the controls. */
import { useEffect, useState } from 'preact/hooks';
import { STATES } from '../../../torvm/src/core/lifecycle.ts';
import { api, ApiError, type DaemonStatus } from '../api.ts';
import { status } from '../store.ts';
import { BandwidthGraph } from '../bandwidth-graph.tsx';

const KILL_SWITCH_WORDS: Record<DaemonStatus['killSwitch'], string> = {
  off: 'Off: the network is not blocked',
  blocked: 'Blocking all traffic',
  booting: 'Blocking all traffic but the VM boot',
  connected: 'On: only Tor traffic leaves',
};

function StateDiagram({ state }: { state: DaemonStatus['state'] }) {
  return (
    <ol class="states" aria-label="Lifecycle states">
      {STATES.map((name) => (
        <li key={name} class={name === state ? 'current' : ''} aria-current={name === state ? 'step' : undefined}>{name}</li>
      ))}
      <li class={state === 'Stopped' ? 'current stopped' : 'stopped'} aria-current={state === 'Stopped' ? 'step' : undefined}>Stopped</li>
    </ol>
  );
}

function exitOf(s: DaemonStatus): { name: string; country: string | null } | null {
  const built = s.tor.circuits.filter((c) => c.status === 'BUILT' && (c.purpose === null || c.purpose === 'GENERAL'));
  const last = built[built.length - 1]?.hops.at(-1);
  if (!last) return null;
  return { name: last.nickname ?? last.fingerprint?.slice(0, 8) ?? 'unknown', country: last.country };
}

type NewnymAnswer = { ok: true; rateLimited: boolean; delaySeconds: number | null; message: string };
type ControlMessage = { text: string; kind: 'info' | 'warn' | 'error' };

function Controls({ s }: { s: DaemonStatus }) {
  const [busy, setBusy] = useState(false);
  const [message, setMessage] = useState<ControlMessage | null>(null);
  // Counts answers, so a repeated answer with the same words still reads as new (screen readers, tests).
  const [answers, setAnswers] = useState(0);
  const act = async (what: () => Promise<ControlMessage>) => {
    setBusy(true);
    setMessage(null);
    try {
      setMessage(await what());
      setAnswers((n) => n + 1);
    } catch (err) {
      setMessage({ text: err instanceof ApiError ? err.message : String(err), kind: 'error' });
      setAnswers((n) => n + 1);
    } finally {
      setBusy(false);
    }
  };
  // "Starting…" and "Stopping…" are done once the state moves on.
  useEffect(() => { setMessage((m) => (m && m.kind === 'info' && m.text.endsWith('…') ? null : m)); }, [s.state === 'Stopped', s.state === 'Running']);
  const stopped = s.state === 'Stopped';
  // Tor's own answer, said plainly: applied now, or held back by its rate limit.
  const newnym = async (): Promise<ControlMessage> => {
    const r = await api<NewnymAnswer>('POST', '/v1/newnym');
    return r.rateLimited
      ? { text: `${r.message}.`, kind: 'warn' }
      : { text: `New identity: ${r.message.charAt(0).toLowerCase()}${r.message.slice(1)}.`, kind: 'info' };
  };
  return (
    <div class="controls">
      <button type="button" id="start" class="primary" disabled={busy || !stopped} onClick={() => act(async () => { await api('POST', '/v1/start'); return { text: 'Starting…', kind: 'info' }; })}>Start</button>
      <button type="button" id="stop" disabled={busy || stopped} onClick={() => act(async () => { await api('POST', '/v1/stop', { kind: 'user-stop' }); return { text: 'Stopping…', kind: 'info' }; })}>Stop</button>
      <button type="button" id="newnym" disabled={busy || s.state !== 'Running'} onClick={() => act(newnym)}>New identity</button>
      {message && <p class={`notice ${message.kind === 'info' ? '' : message.kind}`} role="status" id="control-message" data-kind={message.kind} data-answer={answers} key={answers}>{message.text}</p>}
    </div>
  );
}

export function StatusTab() {
  const s = status.value;
  if (!s) return <p>Waiting for the daemon…</p>;
  const exit = exitOf(s);
  const circuits = s.tor.circuits.filter((c) => c.status === 'BUILT');
  return (
    <div class="grid">
      <div class="card wide">
        <h2>State: <span id="state">{s.state}</span></h2>
        {s.testingNetwork && <p class="notice testing">This run uses a <strong>private testing network</strong>, not the public Tor network. It gives no anonymity.</p>}
        <StateDiagram state={s.state} />
        <Controls s={s} />
        {s.lastError && <p class="notice error" id="last-error">{s.lastError.message}</p>}
      </div>
      <div class="card">
        <h2 id="bootstrap-label">Tor bootstrap</h2>
        <progress id="bootstrap" max={100} value={s.bootstrap.progress} aria-labelledby="bootstrap-label" />
        <p><span id="bootstrap-value">{s.bootstrap.progress}</span>% {s.bootstrap.summary}</p>
        {s.bootstrap.problem && <p class="notice error">{s.bootstrap.problem}</p>}
      </div>
      <div class="card">
        <h2>Kill switch</h2>
        <p id="killswitch" class={`ks ks-${s.killSwitch}`}>{KILL_SWITCH_WORDS[s.killSwitch]}</p>
        <p class="muted">VM: {s.vm.pid === null ? 'not running' : `pid ${s.vm.pid}`}{s.vm.accel ? `, ${s.vm.accel}` : ''}{s.vm.restarts ? `, restarted ${s.vm.restarts}×` : ''}</p>
        <p class="muted">Tor: {s.tor.version ?? 'version unknown'}</p>
      </div>
      <div class="card">
        <h2>Exit</h2>
        <p id="exit">{exit ? <>{exit.name} <span class="country">{exit.country ? exit.country.toUpperCase() : 'country unknown'}</span></> : 'none yet'}</p>
        <h3>Circuits ({circuits.length})</h3>
        <ul class="circuits" id="circuits">
          {circuits.slice(-6).map((c) => (
            <li key={c.id}>{c.hops.map((h) => `${h.nickname ?? h.fingerprint?.slice(0, 8) ?? '?'}${h.country ? ` (${h.country})` : ''}`).join(' → ')}</li>
          ))}
        </ul>
      </div>
      <div class="card wide">
        <h2>Bandwidth</h2>
        <BandwidthGraph history={s.tor.bandwidth.history} />
        <p class="muted">Now: ↓ {formatRate(s.tor.bandwidth.readBps)} ↑ {formatRate(s.tor.bandwidth.writtenBps)}</p>
      </div>
      {s.tor.warnings.length > 0 && (
        <div class="card wide"><h2>Warnings</h2><ul>{s.tor.warnings.map((w) => <li key={w}>{w}</li>)}</ul></div>
      )}
    </div>
  );
}

export function formatRate(bps: number): string {
  if (bps < 1024) return `${Math.round(bps)} B/s`;
  if (bps < 1024 * 1024) return `${(bps / 1024).toFixed(1)} KiB/s`;
  return `${(bps / 1024 / 1024).toFixed(1)} MiB/s`;
}
