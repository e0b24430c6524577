/**
 * Incremental parser for Tor control-port replies (control-spec §2.3, §4.1).
 *
 *   250-key=value        mid line      ("-")
 *   250+key=             data line     ("+"), followed by data lines up to a lone "."
 *   250 OK               end line      (" "), which completes the message
 *
 * Asynchronous events (status 6xx) are collected apart from command replies,
 * so an event that arrives between the lines of a reply cannot corrupt it.
 * The parser is pure: feed it decoded text, get whole messages back.
 */
import { TorvmError } from '../core/errors.ts';

/** One line of a reply. For `data` lines, `data` holds the unstuffed block, lines joined by `\n`. */
export interface ReplyLine {
  status: number;
  kind: 'mid' | 'data' | 'end';
  text: string;
  data?: string;
}

/** A complete reply or event. `status` is the status of its end line. */
export interface ControlMessage {
  status: number;
  /** True for asynchronous event messages (status 6xx, normally 650). */
  isEvent: boolean;
  lines: ReplyLine[];
}

export interface ReplyParserLimits {
  /** Longest line (in characters) accepted while waiting for its line break. */
  maxLineLength?: number;
  /** Largest message (in characters, data included) accepted. */
  maxMessageLength?: number;
}

const STATUS_LINE = /^([0-9]{3})([ +-])(.*)$/s;
const SEPARATOR_KIND = { '-': 'mid', '+': 'data', ' ': 'end' } as const;

interface Accumulator {
  lines: ReplyLine[];
  size: number;
}

/**
 * Feed text with `push()`; it returns the messages completed by that text.
 * Any protocol violation throws ERR_TOR_CONTROL, after which the parser stays
 * failed (the connection must be dropped: the stream can no longer be trusted).
 */
export class ControlReplyParser {
  private readonly maxLineLength: number;
  private readonly maxMessageLength: number;
  private buffer = '';
  private reply: Accumulator | undefined;
  private event: Accumulator | undefined;
  /** Set while inside a data block: where its lines go. */
  private dataBlock: { owner: Accumulator; line: ReplyLine; chunks: string[] } | undefined;
  private failure: TorvmError | undefined;

  constructor(limits: ReplyParserLimits = {}) {
    this.maxLineLength = limits.maxLineLength ?? 1024 * 1024;
    this.maxMessageLength = limits.maxMessageLength ?? 64 * 1024 * 1024;
  }

  /** Parses `chunk` and returns every message it completed, in wire order. */
  push(chunk: string): ControlMessage[] {
    if (this.failure) throw this.failure;
    this.buffer += chunk;
    const done: ControlMessage[] = [];
    let lineStart = 0;
    try {
      for (;;) {
        const newline = this.buffer.indexOf('\n', lineStart);
        if (newline === -1) break;
        const end = newline > lineStart && this.buffer[newline - 1] === '\r' ? newline - 1 : newline;
        const message = this.acceptLine(this.buffer.slice(lineStart, end));
        if (message) done.push(message);
        lineStart = newline + 1;
      }
      this.buffer = this.buffer.slice(lineStart);
      if (this.buffer.length > this.maxLineLength) {
        throw protocolError(`a line exceeds ${this.maxLineLength} characters`);
      }
    } catch (err) {
      this.failure = err instanceof TorvmError ? err : protocolError(String(err));
      this.buffer = '';
      throw this.failure;
    }
    return done;
  }

  /** True when no partial line or message is buffered (useful at connection close). */
  get isIdle(): boolean {
    return this.buffer === '' && !this.reply && !this.event && !this.dataBlock;
  }

  private acceptLine(line: string): ControlMessage | undefined {
    if (this.dataBlock) {
      const block = this.dataBlock;
      if (line === '.') {
        block.line.data = block.chunks.join('\n');
        this.dataBlock = undefined;
      } else {
        // Dot-stuffing: a data line that starts with "." was sent with one more.
        const unstuffed = line.startsWith('.') ? line.slice(1) : line;
        block.chunks.push(unstuffed);
        this.grow(block.owner, unstuffed.length + 1);
      }
      return undefined;
    }

    const match = STATUS_LINE.exec(line);
    if (!match) throw protocolError(`malformed reply line ${JSON.stringify(line.slice(0, 80))}`);
    const status = Number(match[1]);
    const kind = SEPARATOR_KIND[match[2] as keyof typeof SEPARATOR_KIND];
    const isEvent = status >= 600 && status <= 699;
    const replyLine: ReplyLine = { status, kind, text: match[3] ?? '' };

    const owner = (isEvent ? this.event : this.reply) ?? { lines: [], size: 0 };
    if (isEvent) this.event = owner;
    else this.reply = owner;
    owner.lines.push(replyLine);
    this.grow(owner, line.length);

    if (kind === 'data') {
      replyLine.data = '';
      this.dataBlock = { owner, line: replyLine, chunks: [] };
      return undefined;
    }
    if (kind === 'mid') return undefined;

    if (isEvent) this.event = undefined;
    else this.reply = undefined;
    return { status, isEvent, lines: owner.lines };
  }

  private grow(owner: Accumulator, by: number): void {
    owner.size += by;
    if (owner.size > this.maxMessageLength) {
      throw protocolError(`a message exceeds ${this.maxMessageLength} characters`);
    }
  }
}

/** The text of a message's first line: for events, `NAME args...`. */
export function firstLineText(message: ControlMessage): string {
  return message.lines[0]?.text ?? '';
}

/** A one-line human summary of a reply, for error messages: status and end-line text. */
export function describeReply(message: ControlMessage): string {
  const last = message.lines[message.lines.length - 1];
  return `${message.status} ${last?.text ?? ''}`.trim();
}

function protocolError(message: string): TorvmError {
  return new TorvmError('ERR_TOR_CONTROL', `Tor control protocol: ${message}`);
}
