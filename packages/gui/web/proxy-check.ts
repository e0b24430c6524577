/**
 * The proxy form's checks, in the words of the controller's own validators
 * (core/validators.ts, bundled into the GUI): what the form shows inline is
 * what the daemon would answer. Pure, so unit tests run it without a browser.
 */
import { checkCredential, checkHostname, checkPort } from '../../torvm/src/core/validators.ts';

/** The proxy form as typed: every field a string. */
export interface ProxyForm { type: 'none' | 'https' | 'socks5' | 'socks4'; host: string; port: string; username: string; password: string }

/** Field -> problem; empty when the form may be sent. The server checks again with the same functions. */
export function checkProxy(f: ProxyForm): Partial<Record<keyof ProxyForm, string>> {
  const problems: Partial<Record<keyof ProxyForm, string>> = {};
  if (f.type === 'none') return problems;
  const host = f.host === '' ? 'is required' : checkHostname(f.host);
  if (host) problems.host = `The host ${host}`;
  // "080", "1e3" or " 80" are not ports, even where Number() would say so.
  const port = /^[1-9]\d{0,4}$/.test(f.port) ? checkPort(Number(f.port)) : checkPort(Number.NaN);
  if (port) problems.port = `The port ${port}`;
  if (f.type === 'socks4') return problems;
  if ((f.username === '') !== (f.password === '')) problems[f.username === '' ? 'username' : 'password'] = 'Give both a user name and a password, or neither';
  const user = f.username === '' ? null : checkCredential(f.username, 'username');
  if (user) problems.username = `The user name ${user}`;
  const pass = f.password === '' ? null : checkCredential(f.password, 'password');
  if (pass) problems.password = `The password ${pass}`;
  return problems;
}
