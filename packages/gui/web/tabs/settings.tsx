/** Settings: accel, VM memory, lockdown, allow LAN, autostart, log level. They apply at the next start. */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, type GuiSettings } from '../api.ts';

const ACCELS: Array<[GuiSettings['accel'], string]> = [
  ['auto', 'Automatic (fastest that works)'], ['kvm', 'KVM (Linux)'], ['hvf', 'Hypervisor.framework (macOS)'], ['whpx', 'Hyper-V (Windows)'], ['tcg', 'Software emulation (slow, always works)'],
];
const LEVELS: GuiSettings['logLevel'][] = ['error', 'warn', 'info', 'debug', 'trace'];

export function SettingsTab() {
  const [form, setForm] = useState<GuiSettings | null>(null);
  const [memory, setMemory] = useState('');
  const [message, setMessage] = useState<{ text: string; error: boolean } | null>(null);

  const load = async () => {
    try {
      const r = await api<{ settings: GuiSettings }>('GET', '/v1/settings');
      setForm(r.settings);
      setMemory(String(r.settings.memoryMiB));
    } catch (err) {
      setMessage({ text: err instanceof Error ? err.message : String(err), error: true });
    }
  };
  useEffect(() => { void load(); }, []);
  if (!form) return message ? <p class="notice error">{message.text}</p> : <p>Loading…</p>;

  const memoryOk = /^\d{2,4}$/.test(memory) && Number(memory) >= 64 && Number(memory) <= 4096;
  const save = async (e: Event) => {
    e.preventDefault();
    setMessage(null);
    if (!memoryOk) { setMessage({ text: 'Nothing was saved: VM memory must be 64 to 4096 MiB.', error: true }); return; }
    try {
      const r = await api<{ settings: GuiSettings; note: string }>('PUT', '/v1/settings', { ...form, memoryMiB: Number(memory) });
      setForm(r.settings);
      setMemory(String(r.settings.memoryMiB));
      setMessage({ text: `Saved. ${r.note}`, error: false });
    } catch (err) {
      setMessage({ text: err instanceof ApiError ? `The daemon refused: ${err.message}` : String(err), error: true });
    }
  };
  const check = (k: 'lockdown' | 'allowLan' | 'autostart', label: string, help: string) => (
    <div class="field">
      <label class="check"><input type="checkbox" id={`settings-${k}`} checked={form[k]} onChange={(e) => setForm({ ...form, [k]: e.currentTarget.checked })} aria-describedby={`settings-${k}-help`} /> {label}</label>
      <span class="muted small" id={`settings-${k}-help`}>{help}</span>
    </div>
  );
  return (
    <form class="card form" onSubmit={save} noValidate>
      <h2>Settings</h2>
      <p class="muted">Changes apply the next time TorVM starts.</p>
      <div class="field">
        <label for="settings-accel">Virtualization</label>
        <select id="settings-accel" value={form.accel} onChange={(e) => setForm({ ...form, accel: e.currentTarget.value as GuiSettings['accel'] })}>
          {ACCELS.map(([v, l]) => <option key={v} value={v}>{l}</option>)}
        </select>
      </div>
      <div class="field">
        <label for="settings-memory">VM memory (MiB)</label>
        <input id="settings-memory" type="text" inputmode="numeric" value={memory} onInput={(e) => setMemory(e.currentTarget.value)} aria-invalid={memoryOk ? 'false' : 'true'} aria-describedby="settings-memory-help" />
        <span class={memoryOk ? 'muted small' : 'field-error'} id="settings-memory-help">64 to 4096; 128 is plenty for Tor.</span>
      </div>
      {check('lockdown', 'Lockdown', 'Keep blocking the network even after you stop TorVM.')}
      {check('allowLan', 'Allow LAN', 'Let this computer reach its local network directly (never DNS).')}
      {check('autostart', 'Start automatically', 'Start protecting as soon as the TorVM service starts.')}
      <div class="field">
        <label for="settings-loglevel">Log level</label>
        <select id="settings-loglevel" value={form.logLevel} onChange={(e) => setForm({ ...form, logLevel: e.currentTarget.value as GuiSettings['logLevel'] })}>
          {LEVELS.map((l) => <option key={l} value={l}>{l}</option>)}
        </select>
      </div>
      <div class="controls"><button type="submit" class="primary" id="settings-save">Save settings</button></div>
      {message && <p class={`notice ${message.error ? 'error' : ''}`} role="status" id="settings-message">{message.text}</p>}
    </form>
  );
}
