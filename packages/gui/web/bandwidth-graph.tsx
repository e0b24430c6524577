/** A small hand-drawn SVG graph of Tor's read/written bytes per second (no chart library needed). */
type Sample = { t: number; read: number; written: number };

const W = 600;
const H = 140;

function path(samples: Sample[], pick: (s: Sample) => number, max: number): string {
  if (samples.length === 0) return '';
  const step = samples.length > 1 ? W / (samples.length - 1) : W;
  return samples.map((s, i) => `${i === 0 ? 'M' : 'L'}${(i * step).toFixed(1)},${(H - (pick(s) / max) * (H - 10)).toFixed(1)}`).join(' ');
}

export function BandwidthGraph({ history }: { history: Sample[] }) {
  const max = Math.max(1024, ...history.map((s) => Math.max(s.read, s.written)));
  const last = history[history.length - 1];
  const label = last ? `Bandwidth over the last ${history.length} seconds; now ${Math.round(last.read)} B/s down, ${Math.round(last.written)} B/s up` : 'No bandwidth samples yet';
  return (
    <figure class="bandwidth">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={label} preserveAspectRatio="none" id="bandwidth-graph">
        <line x1="0" y1={H - 0.5} x2={W} y2={H - 0.5} class="axis" />
        <path d={path(history, (s) => s.read, max)} class="read" />
        <path d={path(history, (s) => s.written, max)} class="written" />
      </svg>
      <figcaption><span class="key read">■ received</span> <span class="key written">■ sent</span> <span class="muted">scale: {Math.round(max / 1024)} KiB/s</span></figcaption>
    </figure>
  );
}
