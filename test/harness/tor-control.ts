/**
 * A minimal Tor control-protocol client over a unix socket (control-spec.txt):
 * commands, multi-line and data replies, and asynchronous 650 events. Unix
 * sockets are not tied to a network namespace, so the harness can talk to a
 * tor in any namespace from the root one. Test-only: NULL authentication.
 */
import { createConnection, type Socket } from 'node:net';
import { EventEmitter } from 'node:events';

/** One reply: its status code and its lines (data blocks joined with \n). */
export interface ControlReply {
  code: number;
  lines: string[];
}

interface Pending {
  resolve: (reply: ControlReply) => void;
  reject: (error: Error) => void;
}

export class TorControl extends EventEmitter {
  private buffer = '';
  private current: string[] = [];
  private dataLines: string[] | undefined;
  private readonly pending: Pending[] = [];
  private closedError: Error | undefined;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    const fail = (error: Error): void => {
      this.closedError ??= error;
      for (const p of this.pending.splice(0)) p.reject(error);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('control connection closed')));
  }

  /** Connects to `path` and authenticates (NULL auth; the socket's directory is private). */
  static async connect(path: string, timeoutMs = 5_000): Promise<TorControl> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = createConnection({ path });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`control connect to ${path} timed out`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    const control = new TorControl(socket);
    await control.command('AUTHENTICATE', timeoutMs);
    return control;
  }

  /** Sends one command; rejects on a non-2xx reply or after `timeoutMs`. */
  command(line: string, timeoutMs = 10_000): Promise<ControlReply> {
    if (this.closedError) return Promise.reject(this.closedError);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`control command "${line}" timed out`)), timeoutMs);
      this.pending.push({
        resolve: (reply) => {
          clearTimeout(timer);
          if (reply.code >= 200 && reply.code < 300) resolve(reply);
          else reject(new Error(`control command "${line}" failed: ${reply.code} ${reply.lines.join(' | ')}`));
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      });
      this.socket.write(`${line}\r\n`);
    });
  }

  /** GETINFO of one key; returns its value (data blocks as multi-line text). */
  async getInfo(key: string): Promise<string> {
    const reply = await this.command(`GETINFO ${key}`);
    const first = reply.lines[0] ?? '';
    const prefix = `${key}=`;
    if (!first.startsWith(prefix)) throw new Error(`GETINFO ${key}: unexpected reply ${first}`);
    return first.slice(prefix.length);
  }

  close(): void {
    this.socket.end();
    this.socket.destroy();
  }

  private onData(chunk: string): void {
    this.buffer += chunk;
    let newline: number;
    while ((newline = this.buffer.indexOf('\r\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 2);
      this.onLine(line);
    }
  }

  private onLine(line: string): void {
    if (this.dataLines) {
      if (line === '.') {
        const last = this.current.pop() ?? '';
        this.current.push(`${last}${this.dataLines.join('\n')}`);
        this.dataLines = undefined;
      } else this.dataLines.push(line.startsWith('..') ? line.slice(1) : line);
      return;
    }
    const code = Number(line.slice(0, 3));
    const separator = line[3];
    const text = line.slice(4);
    if (separator === '+') {
      this.current.push(text.endsWith('=') ? text : `${text}\n`);
      this.dataLines = [];
      return;
    }
    this.current.push(text);
    if (separator !== ' ') return;
    const reply: ControlReply = { code, lines: this.current };
    this.current = [];
    if (code >= 600) this.emit('event', reply);
    else this.pending.shift()?.resolve(reply);
  }
}

/** Consensus entries (from `ns/all`): nickname, address, ORPort, DirPort and flags. */
export interface ConsensusEntry {
  nickname: string;
  fingerprint: string;
  address: string;
  orPort: number;
  dirPort: number;
  flags: string[];
}

/** Parses router status entries ("r ..." / "s ..." lines) of `GETINFO ns/all`. */
export function parseNetworkStatus(text: string): ConsensusEntry[] {
  const entries: ConsensusEntry[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    if (parts[0] === 'r' && parts.length >= 8) {
      // With or without the descriptor digest, the last three fields are IP ORPort DirPort.
      const n = parts.length;
      entries.push({
        nickname: parts[1] ?? '',
        fingerprint: Buffer.from(parts[2] ?? '', 'base64').toString('hex').toUpperCase(),
        address: parts[n - 3] ?? '',
        orPort: Number(parts[n - 2]),
        dirPort: Number(parts[n - 1]),
        flags: [],
      });
    } else if (parts[0] === 's') {
      const last = entries.at(-1);
      if (last) last.flags = parts.slice(1);
    }
  }
  return entries;
}
