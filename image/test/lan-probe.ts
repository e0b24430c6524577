/**
 * Runs INSIDE the test's network namespace (`ip netns exec NS node --import
 * tsx image/test/lan-probe.ts ARGS`), on the host side of the guest's lan
 * link, and prints one JSON object with what it observed. The test asserts.
 *
 *   lan-probe.ts control PASSWORD   -> { goodAuth, version, user, sandbox, geoip, badAuth }
 *   lan-probe.ts transparent PASSWORD -> { connected, streamStatus, transListeners }
 *   lan-probe.ts udp                -> { dnsAnswers, probes: [...] }
 *   lan-probe.ts hs PASSWORD DIR    -> { auth, setconf }
 *
 * Every wait is bounded; nothing waits on a fixed sleep: the absence of an
 * ICMP error is judged only after a later DNS answer from the guest (packets
 * on the link are handled in order, so an error would have come first).
 */
import dgram from 'node:dgram';
import { connect, type Socket } from 'node:net';
import dnsPacket from 'dns-packet';

const VM = process.env.TORVM_VM_ADDRESS ?? '10.10.10.1';
const CONTROL_PORT = Number(process.env.TORVM_CONTROL_PORT ?? 9051);
/** A v3 onion name (the Tor Project's); Tor answers it from its automap, with no network at all. */
export const PROBE_ONION = '2gzyxa5ihm7nsggfxnu52rck2vv4rvmdlkiu3zzui5du4xyclen53wyd.onion';

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`timed out: ${what}`)), ms).unref())]);
}

/** A line-oriented control-port session (just enough of the protocol for the probe). */
class ControlSession {
  private buffer = '';
  private waiters: Array<() => void> = [];
  private closed = false;
  constructor(private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => { this.buffer += d; this.wake(); });
    sock.on('close', () => { this.closed = true; this.wake(); });
    sock.on('error', () => { this.closed = true; this.wake(); });
  }
  static open(): Promise<ControlSession> {
    return withTimeout(new Promise((resolve, reject) => {
      const s = connect(CONTROL_PORT, VM, () => resolve(new ControlSession(s)));
      s.once('error', reject);
    }), 15_000, 'control connect');
  }
  private wake() { const w = this.waiters; this.waiters = []; for (const f of w) f(); }
  /** Sends a command and returns the full reply (through the final "NNN " line). */
  async command(line: string): Promise<string> {
    this.sock.write(`${line}\r\n`);
    return withTimeout((async () => {
      for (;;) {
        const lines = this.buffer.split('\r\n');
        const end = lines.findIndex((l) => /^\d{3} /.test(l));
        if (end >= 0) {
          const reply = lines.slice(0, end + 1).join('\n');
          this.buffer = lines.slice(end + 1).join('\r\n');
          return reply;
        }
        if (this.closed) return `(closed) ${this.buffer}`;
        await new Promise<void>((r) => this.waiters.push(r));
      }
    })(), 15_000, `control reply to ${line.split(' ')[0]}`);
  }
  close() { this.sock.destroy(); }
}

const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

async function control(password: string) {
  const good = await ControlSession.open();
  const goodAuth = await good.command(`AUTHENTICATE ${quote(password)}`);
  const version = await good.command('GETINFO version');
  // Who Tor runs as after it dropped root, and whether its seccomp sandbox is on.
  const user = await good.command('GETINFO process/user process/uid');
  const sandbox = await good.command('GETCONF Sandbox');
  // The GeoIP database on the system disk (two public addresses: Google's DNS, a Swedish built-in bridge).
  const geoip = await good.command('GETINFO ip-to-country/8.8.8.8 ip-to-country/193.11.166.194');
  good.close();
  const bad = await ControlSession.open();
  const badAuth = await bad.command(`AUTHENTICATE ${quote(`${password}-wrong`)}`);
  bad.close();
  return { goodAuth, version, user, sandbox, geoip, badAuth };
}

async function transparent(password: string) {
  // An arbitrary outside address: the namespace routes everything via the guest.
  const target = { host: '203.0.113.10', port: 80 };
  const sock = connect(target.port, target.host);
  const connected = await withTimeout(new Promise<boolean>((resolve) => {
    sock.once('connect', () => resolve(true));
    sock.once('error', () => resolve(false));
  }), 15_000, 'transparent connect');
  const ctl = await ControlSession.open();
  const auth = await ctl.command(`AUTHENTICATE ${quote(password)}`);
  // Tor holds the stream while it waits for a circuit; its target is the original destination.
  let streamStatus = '';
  for (let i = 0; i < 50 && !streamStatus.includes(`${target.host}:${target.port}`); i++) {
    streamStatus = await ctl.command('GETINFO stream-status');
    if (!streamStatus.includes(target.host)) await new Promise((r) => setTimeout(r, 100));
  }
  const transListeners = await ctl.command('GETINFO net/listeners/trans');
  ctl.close();
  sock.destroy();
  return { connected, auth, streamStatus, transListeners };
}

/**
 * Makes Tor write data of its own to the state disk: configuring an onion
 * service makes it generate the service's keys and hostname file at once.
 */
async function hiddenService(password: string, dir: string) {
  const ctl = await ControlSession.open();
  const auth = await ctl.command(`AUTHENTICATE ${quote(password)}`);
  const setconf = await ctl.command(`SETCONF HiddenServiceDir=${quote(dir)} HiddenServicePort=${quote('80 127.0.0.1:9')}`);
  ctl.close();
  return { auth, setconf };
}

interface UdpProbe { to: string; port: number; error: string | null; replies: number }

async function udp() {
  const probes: Array<UdpProbe & { sock: dgram.Socket }> = [];
  const send = async (to: string, port: number) => {
    const sock = dgram.createSocket('udp4');
    const probe = { to, port, error: null as string | null, replies: 0, sock };
    sock.on('error', (e: NodeJS.ErrnoException) => { probe.error = e.code ?? e.message; });
    sock.on('message', () => { probe.replies++; });
    await new Promise<void>((resolve, reject) => sock.connect(port, to, (err?: Error) => (err ? reject(err) : resolve())));
    sock.send(Buffer.from('torvm-udp-probe'));
    probes.push(probe);
  };
  // Control: our own address, closed port. The kernel reports ECONNREFUSED, which shows the detector works.
  await send('10.10.10.2', 12346);
  await send(VM, 12345);
  await send('203.0.113.10', 12345);
  await send('203.0.113.10', 123);

  const dnsAnswers: Record<string, string[]> = {};
  for (const server of [VM, '198.51.100.53']) {
    const query = dnsPacket.encode({ type: 'query', id: 0x7e57, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: PROBE_ONION }] });
    const sock = dgram.createSocket('udp4');
    const answer = await withTimeout(new Promise<string[]>((resolve, reject) => {
      sock.on('message', (msg) => {
        const decoded = dnsPacket.decode(msg);
        resolve((decoded.answers ?? []).map((a) => `${a.type} ${'data' in a ? String(a.data) : ''}`));
      });
      sock.on('error', reject);
      sock.send(query, 53, server);
    }), 15_000, `DNS answer from ${server}:53`);
    sock.close();
    dnsAnswers[server] = answer;
  }
  const result = probes.map(({ sock, ...p }) => { sock.close(); return p; });
  return { dnsAnswers, probes: result };
}

async function main() {
  const [mode, password] = process.argv.slice(2);
  let out: unknown;
  if (mode === 'control' && password) out = await control(password);
  else if (mode === 'transparent' && password) out = await transparent(password);
  else if (mode === 'udp') out = await udp();
  else if (mode === 'hs' && password && process.argv[4]) out = await hiddenService(password, process.argv[4]);
  else throw new Error('usage: lan-probe.ts control|transparent PASSWORD | udp | hs PASSWORD DIR');
  process.stdout.write(`${JSON.stringify(out)}\n`);
}

main().then(() => process.exit(0), (err: unknown) => {
  process.stderr.write(`lan-probe: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
