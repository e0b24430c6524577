/** Logs: controller, VM serial and Tor lines, live; filter by source and level, search, copy, download. */
import { useEffect, useRef, useState } from 'preact/hooks';
import type { LogLine } from '../api.ts';
import { logs } from '../store.ts';

const LEVEL_RANK: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
type Source = 'all' | 'controller' | 'serial' | 'tor';

function sourceOf(l: LogLine): Exclude<Source, 'all'> {
  if (l.component === 'serial') return 'serial';
  if (l.component === 'tor' || l.component.startsWith('tor')) return 'tor';
  return 'controller';
}

export const formatLine = (l: LogLine): string => `${new Date(l.time).toISOString()} ${l.level.padEnd(5)} [${l.component}] ${l.msg}`;

export function LogsTab() {
  const [level, setLevel] = useState('info');
  const [source, setSource] = useState<Source>('all');
  const [query, setQuery] = useState('');
  const [follow, setFollow] = useState(true);
  const [note, setNote] = useState('');
  const box = useRef<HTMLPreElement>(null);

  const min = LEVEL_RANK[level] ?? 0;
  const q = query.toLowerCase();
  const shown = logs.value.filter((l) => (LEVEL_RANK[l.level] ?? 30) >= min && (source === 'all' || sourceOf(l) === source) && (q === '' || l.msg.toLowerCase().includes(q) || l.component.includes(q)));
  const text = shown.map(formatLine).join('\n');

  useEffect(() => { if (follow && box.current) box.current.scrollTop = box.current.scrollHeight; }, [text, follow]);

  const copy = async () => {
    try { await navigator.clipboard.writeText(text); setNote(`Copied ${shown.length} lines.`); } catch { setNote('The browser refused clipboard access; use Download.'); }
  };
  const download = () => {
    const url = URL.createObjectURL(new Blob([`${text}\n`], { type: 'text/plain' }));
    const a = document.createElement('a');
    a.href = url;
    a.download = `torvm-log-${new Date().toISOString().replace(/[:.]/g, '-')}.txt`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  };
  return (
    <div class="card">
      <h2>Logs</h2>
      <div class="toolbar">
        {/* Labels point at their controls (not wrapped), so a select's name is "Source", not its options. */}
        <span class="tool"><label for="log-source">Source</label> <select id="log-source" value={source} onChange={(e) => setSource(e.currentTarget.value as Source)}>
          <option value="all">All</option><option value="controller">Controller</option><option value="serial">VM serial</option><option value="tor">Tor</option>
        </select></span>
        <span class="tool"><label for="log-level">Level</label> <select id="log-level" value={level} onChange={(e) => setLevel(e.currentTarget.value)}>
          {['trace', 'debug', 'info', 'warn', 'error'].map((l) => <option key={l} value={l}>{l} and above</option>)}
        </select></span>
        <span class="tool"><label for="log-search">Search</label> <input id="log-search" type="search" value={query} onInput={(e) => setQuery(e.currentTarget.value)} /></span>
        <label class="check"><input type="checkbox" id="log-follow" checked={follow} onChange={(e) => setFollow(e.currentTarget.checked)} /> Follow</label>
        <button type="button" id="log-copy" onClick={copy}>Copy</button>
        <button type="button" id="log-download" onClick={download}>Download</button>
      </div>
      <p class="muted small" role="status" id="log-count">{shown.length} of {logs.value.length} lines {note}</p>
      <pre class="log" id="log-lines" ref={box} tabIndex={0} aria-label="Log lines">{text}</pre>
    </div>
  );
}
