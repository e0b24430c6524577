/**
 * What the running Tor really uses (GETCONF through GET /v1/bridges/live),
 * next to its bootstrap progress: after "Save", this is where the user sees
 * the bridges taken up and Tor reaching 100% again. Re-read whenever the
 * state or the bootstrap moves, and when `refresh` changes (after a save).
 */
import { useEffect, useState } from 'preact/hooks';
import { api, type LiveBridges } from './api.ts';
import { status } from './store.ts';

export function LiveBridgesStatus({ refresh }: { refresh: number }) {
  const s = status.value;
  const [live, setLive] = useState<LiveBridges | null>(null);
  const [error, setError] = useState<string | null>(null);
  const state = s?.state ?? 'Stopped';
  const progress = s?.bootstrap.progress ?? 0;
  useEffect(() => {
    let current = true;
    api<LiveBridges>('GET', '/v1/bridges/live')
      .then((l) => { if (current) { setLive(l); setError(null); } })
      .catch((err: unknown) => { if (current) setError(err instanceof Error ? err.message : String(err)); });
    return () => { current = false; };
  }, [refresh, state, progress]);

  let text: string;
  if (error) text = `Could not ask Tor which bridges it uses: ${error}`;
  else if (!live) text = 'Asking Tor…';
  else if (!live.running) text = 'Tor is not running: saved bridges are used at the next start.';
  else if (!live.useBridges) text = 'Tor connects directly now: no bridge is in use.';
  else text = `In use by Tor now: ${live.bridges.map((b) => `${b.transport} ${b.address}${b.fingerprint ? ` (${b.fingerprint.slice(0, 8)}…)` : ''}`).join(', ')}.`;
  return (
    <div class="live-bridges" aria-live="polite">
      <p id="bridges-live" data-use-bridges={live?.running && live.useBridges ? 'true' : 'false'}>{text}</p>
      {live?.running && (
        <p class="muted small" id="bridges-bootstrap">Tor bootstrap: {progress}%{s?.bootstrap.summary ? ` (${s.bootstrap.summary})` : ''}</p>
      )}
    </div>
  );
}
