/** Proxy: the upstream proxy Tor connects through (none, HTTPS CONNECT, SOCKS5, SOCKS4). */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type ChangeResult, type ProxyState } from '../api.ts';
import { checkProxy, type ProxyForm } from '../proxy-check.ts';

export function ProxyTab() {
  const [form, setForm] = useState<ProxyForm>({ type: 'none', host: '', port: '', username: '', password: '' });
  const [hadPassword, setHadPassword] = useState(false);
  const [touched, setTouched] = useState(false);
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);
  const [loaded, setLoaded] = useState<string | null>(null);

  const load = async () => {
    try {
      const p = await api<ProxyState>('GET', '/v1/proxy');
      setForm({ type: p.type, host: p.host ?? '', port: p.port === undefined ? '' : String(p.port), username: p.username ?? '', password: '' });
      setHadPassword(p.hasPassword);
      setLoaded('ok');
    } catch (err) {
      setLoaded(err instanceof Error ? err.message : String(err));
    }
  };
  useEffect(() => { void load(); }, []);

  const problems = touched ? checkProxy(form) : {};
  const set = (k: keyof ProxyForm) => (e: Event) => setForm({ ...form, [k]: (e.currentTarget as HTMLInputElement).value });

  const save = async (e: Event) => {
    e.preventDefault();
    setTouched(true);
    setMessage(null);
    if (Object.keys(checkProxy(form)).length > 0) { setMessage({ text: 'Nothing was saved: fix the marked fields.', error: true }); return; }
    const body = form.type === 'none' ? { type: 'none' } : {
      type: form.type, host: form.host, port: Number(form.port),
      ...(form.type !== 'socks4' && form.username !== '' ? { username: form.username, password: form.password } : {}),
    };
    try {
      const r = await api<ChangeResult>('PUT', '/v1/proxy', body);
      await load();
      setMessage({ text: r.applied ? 'Saved and applied.' : `Saved. ${r.note ?? ''}`, error: false });
    } catch (err) {
      setMessage({ text: err instanceof ApiError ? `The daemon refused: ${err.message}` : String(err), error: true });
    }
  };

  if (loaded === null) return <p>Loading…</p>;
  if (loaded !== 'ok') return <p class="notice error">The proxy setting is not available: {loaded}</p>;
  const field = (k: 'host' | 'port' | 'username' | 'password', label: string, type = 'text', extra: Record<string, string> = {}) => (
    <div class="field">
      <label for={`proxy-${k}`}>{label}</label>
      <input id={`proxy-${k}`} type={type} value={form[k]} onInput={set(k)} aria-invalid={problems[k] ? 'true' : 'false'} aria-describedby={problems[k] ? `proxy-${k}-error` : undefined} autocomplete="off" {...extra} />
      {problems[k] && <span class="field-error" id={`proxy-${k}-error`}>{problems[k]}</span>}
    </div>
  );
  return (
    <form class="card form" onSubmit={save} noValidate>
      <h2>Upstream proxy</h2>
      <p class="muted">Only if your network allows the internet through a proxy. Tor connects to its first relay through it.</p>
      <label for="proxy-type">Type</label>
      <select id="proxy-type" value={form.type} onChange={set('type')}>
        <option value="none">No proxy</option>
        <option value="https">HTTPS (HTTP CONNECT)</option>
        <option value="socks5">SOCKS5</option>
        <option value="socks4">SOCKS4</option>
      </select>
      {form.type !== 'none' && (
        <>
          {field('host', 'Host')}
          {field('port', 'Port', 'text', { inputmode: 'numeric' })}
          {form.type !== 'socks4' && (
            <>
              {field('username', 'User name (optional)')}
              {field('password', hadPassword ? 'Password (saved; type it again to keep it)' : 'Password (optional)', 'password')}
            </>
          )}
        </>
      )}
      <div class="controls"><button type="submit" class="primary" id="proxy-save">Save proxy</button></div>
      {message && <p class={`notice ${message.error ? 'error' : ''}`} role="status" id="proxy-message">{message.text}</p>}
    </form>
  );
}
