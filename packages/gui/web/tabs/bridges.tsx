/**
 * Bridges: paste many lines at once, each checked inline by the controller's
 * own validator (core/bridge-line.ts, bundled here); a bad line is never
 * sent. The server checks again and its 400 message is shown as is.
 */
import { useEffect, useState } from 'preact/hooks';
import { parseBridgeLine, TRANSPORTS } from '../../../torvm/src/core/bridge-line.ts';
import { api, ApiError, type BridgesState, type ChangeResult } from '../api.ts';
import { LiveBridgesStatus } from '../live-bridges.tsx';

type Checked = { line: string; error: string | null };

/** Applies the chosen transport: adds it to bare lines, flags lines of another transport. */
export function checkPasted(text: string, transport: string): Checked[] {
  return text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#')).map((raw) => {
    let line = raw.replace(/^Bridge +/, '');
    const bare = /^[\d[]/.test(line);
    if (bare && transport !== 'auto' && transport !== 'vanilla') line = `${transport} ${line}`;
    const parsed = parseBridgeLine(line);
    if (!parsed.ok) return { line, error: `This line ${parsed.error}` };
    if (transport !== 'auto' && parsed.bridge.transport !== transport) return { line, error: `This is a ${parsed.bridge.transport} bridge, but the chosen transport is ${transport}` };
    return { line, error: null };
  });
}

function describeLine(line: string): string {
  const parsed = parseBridgeLine(line);
  return parsed.ok ? `${parsed.bridge.transport} ${parsed.bridge.host}:${parsed.bridge.port}` : line.slice(0, 40);
}

export function BridgesTab() {
  const [saved, setSaved] = useState<BridgesState | null>(null);
  const [enabled, setEnabled] = useState(false);
  const [useBuiltin, setUseBuiltin] = useState(false);
  const [lines, setLines] = useState<string[]>([]);
  const [transport, setTransport] = useState('auto');
  const [pasted, setPasted] = useState('');
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [saves, setSaves] = useState(0);

  const load = async () => {
    try {
      const b = await api<BridgesState>('GET', '/v1/bridges');
      setSaved(b); setEnabled(b.enabled); setUseBuiltin(b.useBuiltin); setLines(b.lines);
    } catch (err) {
      setLoadError(err instanceof Error ? err.message : String(err));
    }
  };
  useEffect(() => { void load(); }, []);

  const checked = checkPasted(pasted, transport);
  const bad = checked.filter((c) => c.error !== null);

  const save = async (e: Event) => {
    e.preventDefault();
    setMessage(null);
    if (bad.length > 0) {
      setMessage({ text: `Nothing was saved: fix or remove the ${bad.length} line${bad.length > 1 ? 's' : ''} marked below.`, error: true });
      return;
    }
    const next = [...lines, ...checked.map((c) => c.line).filter((l) => !lines.includes(l))];
    try {
      const r = await api<ChangeResult>('PUT', '/v1/bridges', { enabled, useBuiltin, lines: next });
      setPasted('');
      await load();
      setSaves((n) => n + 1);
      setMessage({ text: r.applied ? 'Saved and applied: Tor uses these bridges now.' : `Saved. ${r.note ?? ''}`, error: false });
    } catch (err) {
      setMessage({ text: err instanceof ApiError ? `The daemon refused: ${err.message}` : String(err), error: true });
    }
  };

  if (loadError) return <p class="notice error">Bridges are not available: {loadError}</p>;
  if (!saved) return <p>Loading…</p>;
  return (
    <form class="card form" onSubmit={save} noValidate>
      <h2>Bridges</h2>
      <p class="muted">Bridges are unlisted entry relays for networks that block Tor. Each line is a secret: it is never written to a log.</p>
      <LiveBridgesStatus refresh={saves} />
      <label class="check"><input type="checkbox" id="bridges-enabled" checked={enabled} onChange={(e) => setEnabled(e.currentTarget.checked)} /> Use bridges</label>
      <label class="check"><input type="checkbox" id="bridges-builtin" checked={useBuiltin} onChange={(e) => setUseBuiltin(e.currentTarget.checked)} /> Use the built-in bridges ({saved.builtinCount} known)</label>

      <h3>Your bridges ({lines.length})</h3>
      {lines.length === 0 ? <p class="muted" id="bridge-list-empty">None saved.</p> : (
        <ul class="bridge-list" id="bridge-list">
          {lines.map((l) => (
            <li key={l}><code>{describeLine(l)}</code> <button type="button" class="ghost" onClick={() => setLines(lines.filter((x) => x !== l))} aria-label={`Remove bridge ${describeLine(l)}`}>Remove</button></li>
          ))}
        </ul>
      )}

      <label for="bridge-transport">Transport of the lines you paste</label>
      <select id="bridge-transport" value={transport} onChange={(e) => setTransport(e.currentTarget.value)}>
        <option value="auto">Detect from each line</option>
        {TRANSPORTS.map((t) => <option key={t} value={t}>{t === 'vanilla' ? 'none (vanilla bridge)' : t}</option>)}
      </select>
      <label for="bridge-paste">Add bridges: paste one or more lines</label>
      <textarea id="bridge-paste" rows={5} spellcheck={false} autocomplete="off" value={pasted} onInput={(e) => setPasted(e.currentTarget.value)}
        placeholder="obfs4 192.0.2.1:443 0123456789ABCDEF0123456789ABCDEF01234567 cert=… iat-mode=0" aria-describedby="bridge-check" />
      <ul id="bridge-check" class="line-check" aria-live="polite">
        {checked.map((c, i) => (
          <li key={`${i}-${c.line}`} class={c.error ? 'bad' : 'good'}>
            <span class="mark" aria-hidden="true">{c.error ? '✗' : '✓'}</span> line {i + 1}: {c.error ?? `${describeLine(c.line)} looks right`}
          </li>
        ))}
      </ul>
      <div class="controls">
        <button type="submit" class="primary" id="bridges-save">Save bridges</button>
      </div>
      {message && <p class={`notice ${message.error ? 'error' : ''}`} role="status" id="bridges-message">{message.text}</p>}
    </form>
  );
}
