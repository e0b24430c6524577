/** The GUI shell: header, tabs (WAI-ARIA tablist), theme, and the event stream. */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, followEvents, setToken, takeToken, type LogLine } from './api.ts';
import { connection, pushLogs, pushStatus, status } from './store.ts';
import { StatusTab } from './tabs/status.tsx';
import { BridgesTab } from './tabs/bridges.tsx';
import { ProxyTab } from './tabs/proxy.tsx';
import { SettingsTab } from './tabs/settings.tsx';
import { LogsTab } from './tabs/logs.tsx';
import './style.css';

const TABS = [
  { id: 'status', label: 'Status', Panel: StatusTab },
  { id: 'bridges', label: 'Bridges', Panel: BridgesTab },
  { id: 'proxy', label: 'Proxy', Panel: ProxyTab },
  { id: 'settings', label: 'Settings', Panel: SettingsTab },
  { id: 'logs', label: 'Logs', Panel: LogsTab },
] as const;
type TabId = (typeof TABS)[number]['id'];

type Theme = 'auto' | 'light' | 'dark';
const THEME_KEY = 'torvm-theme';

function applyTheme(t: Theme): void {
  if (t === 'auto') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = t;
}

function ThemeToggle() {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem(THEME_KEY) as Theme | null) ?? 'auto');
  useEffect(() => { applyTheme(theme); localStorage.setItem(THEME_KEY, theme); }, [theme]);
  const next: Record<Theme, Theme> = { auto: 'light', light: 'dark', dark: 'auto' };
  return (
    <button type="button" class="ghost" id="theme-toggle" onClick={() => { applyTheme(next[theme]); setTheme(next[theme]); }} aria-label={`Colour theme: ${theme}. Switch to ${next[theme]}`}>
      Theme: {theme}
    </button>
  );
}

function Tabs() {
  const initial = (TABS.find((t) => `#${t.id}` === location.hash)?.id ?? 'status') as TabId;
  const [active, setActive] = useState<TabId>(initial);
  const refs = useRef<Record<string, HTMLButtonElement | null>>({});
  const select = (id: TabId, focus: boolean) => {
    setActive(id);
    if (focus) refs.current[id]?.focus();
  };
  const onKey = (e: KeyboardEvent) => {
    const i = TABS.findIndex((t) => t.id === active);
    const to = e.key === 'ArrowRight' ? (i + 1) % TABS.length : e.key === 'ArrowLeft' ? (i - 1 + TABS.length) % TABS.length : e.key === 'Home' ? 0 : e.key === 'End' ? TABS.length - 1 : -1;
    const tab = TABS[to];
    if (tab) { e.preventDefault(); select(tab.id, true); }
  };
  return (
    <>
      <nav>
        <div role="tablist" aria-label="TorVM sections" class="tablist" onKeyDown={onKey}>
          {TABS.map((t) => (
            <button type="button" role="tab" id={`tab-${t.id}`} key={t.id} aria-selected={active === t.id} aria-controls={`panel-${t.id}`}
              tabIndex={active === t.id ? 0 : -1} ref={(el) => { refs.current[t.id] = el; }} onClick={() => select(t.id, false)}>
              {t.label}
            </button>
          ))}
        </div>
      </nav>
      {TABS.map((t) => (
        <section role="tabpanel" id={`panel-${t.id}`} key={t.id} aria-labelledby={`tab-${t.id}`} hidden={active !== t.id} tabIndex={0}>
          {active === t.id && <t.Panel />}
        </section>
      ))}
    </>
  );
}

function App() {
  const s = status.value;
  const conn = connection.value;
  return (
    <>
      <header>
        <h1>TorVM</h1>
        {s?.testingNetwork && <strong class="badge testing" id="testing-badge" title="This run uses a private test network, not the public Tor network">TESTING NETWORK</strong>}
        <span class={`conn conn-${conn}`} role="status">
          {conn === 'up' ? 'connected to the daemon' : conn === 'connecting' ? 'connecting…' : conn === 'unauthorized' ? 'not authorized: open the GUI with `torvm gui`' : 'daemon unreachable; retrying…'}
        </span>
        <ThemeToggle />
      </header>
      <main>
        {conn === 'unauthorized' ? (
          <p class="notice error">This page has no valid token. Run <code>torvm gui</code> to open the GUI with a fresh link.</p>
        ) : <Tabs />}
      </main>
    </>
  );
}

async function start(): Promise<void> {
  applyTheme((localStorage.getItem(THEME_KEY) as Theme | null) ?? 'auto');
  setToken(takeToken());
  const root = document.getElementById('app');
  if (root) render(<App />, root);
  try {
    const { lines } = await api<{ lines: LogLine[] }>('GET', '/v1/logs');
    pushLogs(lines);
  } catch { /* the stream below reports the connection state */ }
  void followEvents({
    status: (s) => { pushStatus(s); connection.value = 'up'; },
    log: (l) => pushLogs([l]),
    connected: (up) => { connection.value = up ? 'up' : (connection.value === 'unauthorized' ? 'unauthorized' : 'down'); },
  }, new AbortController().signal).then(() => {
    if (connection.value !== 'up') connection.value = 'unauthorized';
  });
}

void start();
