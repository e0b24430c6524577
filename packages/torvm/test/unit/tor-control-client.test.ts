/**
 * TorControlClient against a fake control port: a net.Server on 127.0.0.1
 * that plays Tor's side of recorded transcripts, including events between
 * reply lines, data blocks, silence (timeouts) and dropped connections.
 */
import { after, afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { createServer, type Server, type Socket } from 'node:net';
import { TorControlClient, type ControlClientState, type TorEvent } from '../../src/tor/control-client.ts';
import { BootstrapMonitor } from '../../src/tor/bootstrap-monitor.ts';
import { isTorvmError } from '../../src/core/errors.ts';

const PASSWORD = 'p"w\\ d';
const WAIT_MS = 5_000;

type Handler = (line: string, socket: Socket, fake: FakeTor) => boolean;

/** Tor's side of the handshake; tests add handlers for the rest. */
const handshake: Handler = (line, socket) => {
  if (line === 'PROTOCOLINFO 1') {
    socket.write('250-PROTOCOLINFO 1\r\n250-AUTH METHODS=HASHEDPASSWORD\r\n250-VERSION Tor="0.4.9.11"\r\n250 OK\r\n');
  } else if (line.startsWith('AUTHENTICATE ')) {
    if (line === 'AUTHENTICATE "p\\"w\\\\ d"') socket.write('250 OK\r\n');
    else socket.end('515 Authentication failed: Password did not match HashedControlPassword value from configuration\r\n');
  } else if (line.startsWith('SETEVENTS')) {
    socket.write('250 OK\r\n');
  } else return false;
  return true;
};

class FakeTor extends EventEmitter {
  readonly lines: string[] = [];
  readonly sockets = new Set<Socket>();
  handlers: Handler[] = [handshake];
  private constructor(private readonly server: Server, readonly port: number) {
    super();
  }

  static async start(port = 0): Promise<FakeTor> {
    const server = createServer();
    server.listen(port, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    assert.ok(address && typeof address === 'object');
    const fake = new FakeTor(server, address.port);
    server.on('connection', (socket) => fake.accept(socket));
    return fake;
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => {});
    socket.setEncoding('utf8');
    let buffer = '';
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      let newline: number;
      while ((newline = buffer.indexOf('\r\n')) !== -1) {
        const line = buffer.slice(0, newline);
        buffer = buffer.slice(newline + 2);
        this.lines.push(line);
        this.emit('line', line);
        const handled = this.handlers.some((handler) => handler(line, socket, this));
        if (!handled) socket.write(`510 Unrecognized command "${line.split(' ')[0]}"\r\n`);
      }
    });
  }

  /** Resolves with the first line (already received or future) matching `pattern`. */
  waitForLine(pattern: RegExp, from = 0): Promise<string> {
    const seen = this.lines.slice(from).find((l) => pattern.test(l));
    if (seen !== undefined) return Promise.resolve(seen);
    return withTimeout(new Promise((resolve) => {
      const onLine = (line: string): void => {
        if (pattern.test(line)) {
          this.off('line', onLine);
          resolve(line);
        }
      };
      this.on('line', onLine);
    }), `line ${pattern}`);
  }

  dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
  }

  async stop(): Promise<void> {
    this.dropAll();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]);
}

function waitForState(client: TorControlClient, state: ControlClientState): Promise<void> {
  if (client.state === state) return Promise.resolve();
  return withTimeout(new Promise<void>((resolve) => {
    const off = client.onStateChange((s) => {
      if (s === state) {
        off();
        resolve();
      }
    });
  }), `state ${state}`);
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});
after(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(options: { reconnect?: boolean; commandTimeoutMs?: number } = {}): Promise<{ fake: FakeTor; client: TorControlClient }> {
  const fake = await FakeTor.start();
  const client = new TorControlClient({
    host: '127.0.0.1', port: fake.port, password: PASSWORD,
    commandTimeoutMs: options.commandTimeoutMs ?? 2_000,
    reconnect: options.reconnect === false ? false : { initialDelayMs: 10, maxDelayMs: 50 },
  });
  cleanups.push(async () => {
    await client.close();
    await fake.stop();
  });
  return { fake, client };
}

describe('TorControlClient (fake control port)', () => {
  it('authenticates with PROTOCOLINFO then a quoted password', async () => {
    const { fake, client } = await setup();
    const info = await client.connect();
    assert.deepEqual(info, { authMethods: ['HASHEDPASSWORD'], torVersion: '0.4.9.11' });
    assert.equal(client.state, 'ready');
    assert.deepEqual(fake.lines, ['PROTOCOLINFO 1', 'AUTHENTICATE "p\\"w\\\\ d"']);
  });

  it('reports a refused password (515) and never retries it', async () => {
    const fake = await FakeTor.start();
    const client = new TorControlClient({ host: '127.0.0.1', port: fake.port, password: 'wrong', reconnect: { initialDelayMs: 10 } });
    cleanups.push(async () => {
      await client.close();
      await fake.stop();
    });
    await assert.rejects(client.connect({ retry: true }), (err: unknown) =>
      isTorvmError(err, 'ERR_TOR_CONTROL') && err.details?.status === 515 && !err.message.includes('wrong'));
    assert.equal(client.state, 'closed');
    assert.equal(fake.lines.filter((l) => l.startsWith('AUTHENTICATE')).length, 1);
  });

  it('matches pipelined replies in order, with events between reply lines and data blocks', async () => {
    const { fake, client } = await setup();
    fake.handlers.push((line, socket) => {
      if (line === 'GETINFO version config-text') {
        // Written in pieces (one split mid-line), with events between reply lines.
        socket.write('250-version=0.4.9.11\r\n650 BW 10 20\r\n250+config-');
        socket.write('text=\r\nA 1\r\n..dot\r\n.\r\n650 NOTICE between\r\n');
        socket.write('250 OK\r\n');
        return true;
      }
      if (line === 'GETCONF Bridge') return !!socket.write('250-Bridge=127.0.0.1:1\r\n250 Bridge=127.0.0.1:2\r\n');
      return false;
    });
    await client.connect();
    const events: TorEvent[] = [];
    client.onEvent((e) => events.push(e));
    const [info, conf] = await Promise.all([client.getInfo(['version', 'config-text']), client.getConf(['Bridge'])]);
    assert.deepEqual(Object.fromEntries(info), { version: '0.4.9.11', 'config-text': 'A 1\n.dot' });
    assert.deepEqual(Object.fromEntries(conf), { Bridge: ['127.0.0.1:1', '127.0.0.1:2'] });
    assert.deepEqual(events.map((e) => e.type), ['BW', 'LOG']);
    assert.deepEqual(events[0]?.type === 'BW' && [events[0].bytesRead, events[0].bytesWritten], [10, 20]);
  });

  it('turns error replies into ERR_TOR_CONTROL with the status', async () => {
    const { fake, client } = await setup();
    fake.handlers.push((line, socket) => line.startsWith('GETINFO') && !!socket.write('552 Unrecognized key "nope"\r\n'));
    await client.connect();
    await assert.rejects(client.getInfo(['nope']), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL') && err.details?.status === 552);
    assert.equal(client.state, 'ready');
  });

  it('refuses newline injection before anything reaches the socket', async () => {
    const { fake, client } = await setup();
    await client.connect();
    const before = fake.lines.length;
    await assert.rejects(client.setConf({ ContactInfo: 'x\r\nSIGNAL HALT' }), (err: unknown) => isTorvmError(err, 'ERR_UNSAFE_VALUE'));
    await assert.rejects(client.getInfo(['version\nSIGNAL HALT']), (err: unknown) => isTorvmError(err, 'ERR_UNSAFE_VALUE'));
    // A later command proves the connection is in step and nothing else was sent.
    fake.handlers.push((line, socket) => line === 'GETINFO version' && !!socket.write('250-version=1\r\n250 OK\r\n'));
    assert.equal((await client.getInfo(['version'])).get('version'), '1');
    assert.deepEqual(fake.lines.slice(before), ['GETINFO version']);
  });

  it('times out a silent command, drops the connection, reconnects and works again', async () => {
    const { fake, client } = await setup({ commandTimeoutMs: 200 });
    let answer = false;
    fake.handlers.push((line, socket) => {
      if (line !== 'GETINFO version') return false;
      if (answer) socket.write('250-version=0.4.9.11\r\n250 OK\r\n');
      return true; // the first time: silence
    });
    await client.connect();
    await assert.rejects(client.getInfo(['version']), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL') && /no reply/.test(err.message));
    answer = true;
    await waitForState(client, 'ready');
    assert.equal((await client.getInfo(['version'])).get('version'), '0.4.9.11');
    assert.equal(fake.lines.filter((l) => l === 'PROTOCOLINFO 1').length, 2);
  });

  it('keeps the queue in step when a caller aborts a command already sent', async () => {
    const { fake, client } = await setup();
    let first: Socket | undefined;
    fake.handlers.push((line, socket) => {
      if (line === 'GETINFO slow') {
        first = socket;
        return true;
      }
      if (line === 'GETINFO fast') {
        // Tor answers in order: the slow reply comes first.
        first?.write('250-slow=1\r\n250 OK\r\n');
        socket.write('250-fast=2\r\n250 OK\r\n');
        return true;
      }
      return false;
    });
    await client.connect();
    const controller = new AbortController();
    const slow = client.getInfo(['slow'], { signal: controller.signal });
    await fake.waitForLine(/^GETINFO slow$/);
    controller.abort();
    await assert.rejects(slow, (err: unknown) => isTorvmError(err, 'ERR_CANCELLED'));
    const fast = await client.getInfo(['fast']);
    assert.deepEqual(Object.fromEntries(fast), { fast: '2' });
  });

  it('reconnects after a drop, re-authenticates and re-issues SETEVENTS; pending commands fail', async () => {
    const { fake, client } = await setup();
    fake.handlers.push((line) => line === 'GETINFO hang');
    await client.connect();
    await client.setEvents(['STATUS_CLIENT', 'CIRC', 'STREAM', 'BW', 'NOTICE', 'WARN']);
    const states: ControlClientState[] = [];
    client.onStateChange((s) => states.push(s));
    const pending = client.getInfo(['hang']);
    await fake.waitForLine(/^GETINFO hang$/);
    const mark = fake.lines.length;
    fake.dropAll();
    await assert.rejects(pending, (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));
    await waitForState(client, 'ready');
    assert.deepEqual(states, ['reconnecting', 'ready']);
    assert.deepEqual(fake.lines.slice(mark), [
      'PROTOCOLINFO 1', 'AUTHENTICATE "p\\"w\\\\ d"', 'SETEVENTS STATUS_CLIENT CIRC STREAM BW NOTICE WARN',
    ]);
    // Events flow on the new connection.
    const got = new Promise<TorEvent>((resolve) => client.onEvent(resolve));
    for (const socket of fake.sockets) socket.write('650 CIRC 3 LAUNCHED\r\n');
    const event = await withTimeout(got, 'CIRC event');
    assert.equal(event.type, 'CIRC');
  });

  it('waits for a Tor that is not up yet when connecting with retry', async () => {
    const probe = await FakeTor.start();
    const port = probe.port;
    await probe.stop();
    let sawFailure: () => void = () => {};
    const firstFailure = new Promise<void>((resolve) => { sawFailure = resolve; });
    const client = new TorControlClient({
      host: '127.0.0.1', port, password: PASSWORD, reconnect: { initialDelayMs: 10, maxDelayMs: 40 },
      log: (line) => { if (line.includes('connect failed')) sawFailure(); },
    });
    const fakes: FakeTor[] = [];
    cleanups.push(async () => {
      await client.close();
      for (const f of fakes) await f.stop();
    });
    const connecting = client.connect({ retry: true });
    // At least one attempt fails on the closed port before Tor "boots".
    await withTimeout(firstFailure, 'a failed attempt');
    fakes.push(await FakeTor.start(port));
    assert.equal((await connecting).torVersion, '0.4.9.11');
    assert.equal(client.state, 'ready');
  });

  it('cancels a retrying connect with its AbortSignal', async () => {
    const probe = await FakeTor.start();
    const port = probe.port;
    await probe.stop();
    const client = new TorControlClient({ host: '127.0.0.1', port, password: PASSWORD, reconnect: { initialDelayMs: 10, maxDelayMs: 20 } });
    cleanups.push(() => client.close());
    const controller = new AbortController();
    const connecting = client.connect({ retry: true, signal: controller.signal });
    controller.abort();
    await assert.rejects(connecting, (err: unknown) => isTorvmError(err, 'ERR_CANCELLED'));
    assert.equal(client.state, 'idle');
  });

  it('reports NEWNYM applied (650 SIGNAL NEWNYM) and rate-limited (NOTICE), then restores SETEVENTS', async () => {
    const { fake, client } = await setup();
    let newnyms = 0;
    fake.handlers.push((line, socket) => {
      if (line !== 'SIGNAL NEWNYM') return false;
      newnyms++;
      socket.write(newnyms === 1
        ? '250 OK\r\n650 SIGNAL NEWNYM\r\n'
        : '250 OK\r\n650 NOTICE Rate limiting NEWNYM request: delaying by 7 second(s)\r\n');
      return true;
    });
    await client.connect();
    await client.setEvents(['BW']);
    assert.deepEqual(await client.newIdentity(), { rateLimited: false });
    assert.deepEqual(await client.newIdentity(), {
      rateLimited: true, delaySeconds: 7, message: 'Rate limiting NEWNYM request: delaying by 7 second(s)',
    });
    assert.deepEqual(fake.lines.filter((l) => l.startsWith('SETEVENTS')), [
      'SETEVENTS BW', 'SETEVENTS BW NOTICE SIGNAL', 'SETEVENTS BW', 'SETEVENTS BW NOTICE SIGNAL', 'SETEVENTS BW',
    ]);
    assert.deepEqual(client.subscribedEvents, ['BW']);
  });

  it('reports a NEWNYM that Tor never acts on as a timeout with a hint', async () => {
    const { fake, client } = await setup();
    fake.handlers.push((line, socket) => line === 'SIGNAL NEWNYM' && !!socket.write('250 OK\r\n'));
    await client.connect();
    await assert.rejects(client.newIdentity({ timeoutMs: 100 }), (err: unknown) =>
      isTorvmError(err, 'ERR_TOR_CONTROL') && /client port/.test(err.hint ?? ''));
  });

  it('close() fails pending commands and does not reconnect', async () => {
    const { fake, client } = await setup();
    fake.handlers.push((line) => line === 'GETINFO hang');
    await client.connect();
    const pending = client.getInfo(['hang']);
    await fake.waitForLine(/^GETINFO hang$/);
    await client.close();
    await assert.rejects(pending, (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));
    assert.equal(client.state, 'closed');
    await assert.rejects(client.getInfo(['version']), (err: unknown) => isTorvmError(err, 'ERR_TOR_CONTROL'));
    assert.equal(fake.lines.filter((l) => l === 'PROTOCOLINFO 1').length, 1);
  });

  it('without reconnect, a drop closes the client', async () => {
    const { fake, client } = await setup({ reconnect: false });
    await client.connect();
    const closed = waitForState(client, 'closed');
    fake.dropAll();
    await closed;
    assert.equal(client.state, 'closed');
  });

  it('drives a BootstrapMonitor: seeded by GETINFO, finished by events', async () => {
    const { fake, client } = await setup();
    fake.handlers.push((line, socket) => line === 'GETINFO status/bootstrap-phase' &&
      !!socket.write('250-status/bootstrap-phase=NOTICE BOOTSTRAP PROGRESS=5 TAG=conn SUMMARY="Connecting to a relay"\r\n250 OK\r\n'));
    await client.connect();
    const monitor = new BootstrapMonitor(client);
    cleanups.push(async () => monitor.stop());
    const seeded = await monitor.start();
    assert.equal(seeded.progress, 5);
    assert.ok(fake.lines.includes('SETEVENTS STATUS_CLIENT STATUS_GENERAL WARN'));
    const done = monitor.waitUntilBootstrapped({ stallTimeoutMs: WAIT_MS });
    for (const socket of fake.sockets) {
      socket.write('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=50 TAG=loading_descriptors SUMMARY="Loading relay descriptors"\r\n');
      socket.write('650 STATUS_CLIENT NOTICE BOOTSTRAP PROGRESS=100 TAG=done SUMMARY="Done"\r\n');
    }
    const snapshot = await done;
    assert.deepEqual([snapshot.progress, snapshot.tag, snapshot.done], [100, 'done', true]);
  });
});
