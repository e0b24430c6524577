// TCP state machine transcripts: the client's segments in, the stack's segments out.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ACK, FIN, PSH, RST, SYN } from '../../src/tcp-segment.ts';
import { CLIENT, Client, FakeUpstream, SERVER, bytes, establishFlow, makeStack, tick } from './harness.ts';

/** Runs SYN -> dial ok -> SYN-ACK -> ACK and returns the pieces. */
async function established(options: Parameters<typeof makeStack>[0] = {}, synWindow = 65535) {
  const flow = await establishFlow(options, { window: synWindow });
  return { ...flow, iss: flow.synAck.seq };
}

describe('TCP handshake', () => {
  it('holds the SYN-ACK until the SOCKS connect succeeds', async () => {
    const { io, dialer, stack } = makeStack();
    const client = new Client(stack, 40000);
    client.send(SYN);
    await tick();
    assert.equal(io.sent.length, 0, 'nothing may be sent before the upstream is connected');
    assert.equal(dialer.dials.length, 1);
    assert.equal(dialer.dials[0]!.request.host, '93.184.216.34');
    assert.equal(dialer.dials[0]!.request.port, 80);
    client.send(SYN); // the client's SYN retransmission must not start a second dial
    assert.equal(dialer.dials.length, 1);
    dialer.dials[0]!.resolve(new FakeUpstream());
    await tick();
    const [synAck, ...rest] = io.takeTcp();
    assert.equal(rest.length, 0);
    assert.equal(synAck!.flags, SYN | ACK);
    assert.equal(synAck!.ack, 1001);
    assert.equal(synAck!.mss, 1460);
    assert.equal(synAck!.src, SERVER, 'the SYN-ACK comes from the address the client dialed');
    assert.equal(synAck!.dst, CLIENT);
  });

  it('answers RST when the SOCKS connect fails', async () => {
    const { io, dialer, stack } = makeStack();
    new Client(stack, 40000).send(SYN);
    dialer.dials[0]!.reject(new Error('connection refused'));
    await tick();
    const [rst] = io.takeTcp();
    assert.equal(rst!.flags, RST | ACK);
    assert.equal(rst!.ack, 1001);
    assert.equal(stack.flowCount, 0);
    assert.equal(stack.stats.flowsRefused, 1);
  });

  it('a slow connect never stalls other flows', async () => {
    const { io, dialer, stack } = makeStack();
    new Client(stack, 40001).send(SYN);
    new Client(stack, 40002).send(SYN);
    dialer.dials[1]!.resolve(new FakeUpstream());
    await tick();
    const out = io.takeTcp();
    assert.equal(out.length, 1);
    assert.equal(out[0]!.dstPort, 40002);
    assert.equal(stack.flowCount, 2);
  });

  it('gives up on a dial after the connect timeout and answers RST', async () => {
    const { io, dialer, stack, clock } = makeStack({ tcp: { connectTimeoutMs: 5000 } });
    new Client(stack, 40000).send(SYN);
    const dial = dialer.dials[0]!;
    dial.signal.addEventListener('abort', () => dial.reject(new Error('aborted')));
    clock.advance(5000);
    await tick();
    assert.equal(io.takeTcp()[0]!.flags, RST | ACK);
    assert.equal(stack.flowCount, 0);
  });

  it('retransmits a lost SYN-ACK on timeout', async () => {
    const { io, dialer, stack, clock } = makeStack();
    new Client(stack, 40000).send(SYN);
    dialer.dials[0]!.resolve(new FakeUpstream());
    await tick();
    const [first] = io.takeTcp();
    clock.advance(1000);
    const [again] = io.takeTcp();
    assert.equal(again!.flags, SYN | ACK);
    assert.equal(again!.seq, first!.seq);
  });

  it('answers RST to a segment for no flow', () => {
    const { io, stack } = makeStack();
    new Client(stack, 40000).send(ACK, bytes('x'), { seq: 5, ack: 777 });
    const [rst] = io.takeTcp();
    assert.equal(rst!.flags, RST);
    assert.equal(rst!.seq, 777);
  });
});

describe('TCP data', () => {
  it('delivers client data upstream and ACKs it', async () => {
    const { client, upstream, io } = await established();
    client.send(ACK | PSH, bytes('GET / HTTP/1.0\r\n\r\n'));
    await tick();
    assert.equal(upstream.received, 'GET / HTTP/1.0\r\n\r\n');
    const acks = io.takeTcp();
    assert.equal(acks.at(-1)!.ack, 1001 + 18);
  });

  it('sends upstream data in MSS-sized segments within the client window', async () => {
    const { upstream, io, iss } = await established({ mtu: 576 }, 2000);
    upstream.handlers!.data(new Uint8Array(5000).fill(7));
    await tick();
    const segments = io.takeTcp();
    // 3 x 536 fill the 2000-byte window but for 392 bytes; sender-side silly-window
    // avoidance holds that runt back while data is in flight and more is queued.
    assert.deepEqual(
      segments.map((s) => s.payload.length),
      [536, 536, 536],
      'the MSS (MTU 576) and the 2000-byte window bound what is sent',
    );
    assert.equal(segments[0]!.seq, (iss + 1) >>> 0);
  });

  it('retransmits unacknowledged data after the RTO', async () => {
    const { upstream, io, clock, client } = await established();
    upstream.handlers!.data(bytes('hello'));
    await tick();
    const [first] = io.takeTcp();
    clock.advance(999);
    assert.equal(io.sent.length, 0);
    clock.advance(1);
    const [again] = io.takeTcp();
    assert.equal(again!.seq, first!.seq);
    assert.equal(Buffer.from(again!.payload).toString(), 'hello');
    client.send(ACK, undefined, { ack: (first!.seq + 5) >>> 0 });
    await tick();
    clock.advance(60_000);
    assert.equal(io.takeTcp().length, 0, 'nothing is retransmitted once acknowledged');
  });

  it('resets the flow after too many retransmissions', async () => {
    const { upstream, io, clock, stack } = await established({ tcp: { maxRetransmits: 3 } });
    upstream.handlers!.data(bytes('hello'));
    await tick();
    clock.advance(600_000);
    const out = io.takeTcp();
    assert.equal(out.at(-1)!.flags & RST, RST);
    assert.equal(out.filter((s) => s.payload.length === 5).length, 4);
    assert.equal(stack.flowCount, 0);
    assert.ok(upstream.destroyed);
  });

  it('fast-retransmits after three duplicate ACKs', async () => {
    const { upstream, io, client } = await established();
    upstream.handlers!.data(new Uint8Array(1460 * 4));
    await tick();
    const sent = io.takeTcp();
    assert.equal(sent.length, 4);
    const una = sent[0]!.seq;
    for (let i = 0; i < 3; i++) client.send(ACK, undefined, { ack: una });
    const [retransmit] = io.takeTcp();
    assert.equal(retransmit!.seq, una);
    // A partial ACK retransmits the next hole at once.
    client.send(ACK, undefined, { ack: (una + 1460) >>> 0 });
    const [next] = io.takeTcp();
    assert.equal(next!.seq, (una + 1460) >>> 0);
  });

  it('probes a zero window and resumes when it opens', async () => {
    const { upstream, io, clock, client, iss } = await established({}, 0);
    upstream.handlers!.data(bytes('waiting'));
    await tick();
    assert.equal(io.takeTcp().length, 0, 'nothing is sent into a zero window');
    clock.advance(1000);
    const [probe] = io.takeTcp();
    assert.equal(probe!.payload.length, 0);
    assert.equal(probe!.seq, iss, 'the probe uses SND.UNA - 1');
    clock.advance(2000);
    assert.equal(io.takeTcp().length, 1, 'probes back off and continue');
    client.send(ACK, undefined, { window: 1000 });
    await tick();
    const [data] = io.takeTcp();
    assert.equal(Buffer.from(data!.payload).toString(), 'waiting');
  });

  it('buffers out-of-order segments and sends a duplicate ACK for the hole', async () => {
    const { upstream, io, client } = await established();
    client.send(ACK, bytes('world'), { seq: client.seq + 6 });
    const [dup] = io.takeTcp();
    assert.equal(dup!.ack, client.seq, 'the duplicate ACK points at the hole');
    assert.equal(upstream.written.length, 0);
    client.send(ACK, bytes('hello '));
    await tick();
    assert.equal(upstream.received, 'hello world');
    assert.equal(io.takeTcp().at(-1)!.ack, client.seq + 11);
  });

  it('drops duplicate data and re-ACKs it', async () => {
    const { upstream, io, client } = await established();
    client.send(ACK, bytes('abc'));
    await tick();
    io.takeTcp();
    client.send(ACK, bytes('abc'));
    assert.equal(upstream.received, 'abc');
    assert.equal(io.takeTcp()[0]!.ack, client.seq + 3);
  });

  it('ties the receive window to upstream backpressure and sends a window update on drain', async () => {
    const { upstream, io, client } = await established();
    client.send(ACK, new Uint8Array(1400));
    await tick();
    assert.equal(io.takeTcp()[0]!.window, 65535 - 1400, 'less than an MSS is not worth a window update (SWS)');
    client.seq += 1400;
    client.send(ACK, new Uint8Array(600));
    await tick();
    assert.equal(io.takeTcp()[0]!.window, 65535, 'with room upstream, the window reopens');
    client.seq += 600;
    upstream.writableLength = 65_000;
    client.send(ACK, new Uint8Array(1000));
    client.send(ACK, new Uint8Array(1000), { seq: client.seq + 1000 });
    await tick();
    const [ack] = io.takeTcp();
    assert.equal(ack!.window, 65535 - 2000, 'a full upstream keeps the window from reopening');
    client.seq += 2000;
    for (let i = 0; i < 40; i++) client.send(ACK, new Uint8Array(1000), { seq: client.seq + i * 1000 });
    await tick();
    assert.equal(io.takeTcp().at(-1)!.window, 65535 - 42_000);
    upstream.writableLength = 0;
    upstream.handlers!.drain();
    await tick();
    const [update] = io.takeTcp();
    assert.equal(update!.window, 65535);
  });

  it('rejects data beyond the advertised window', async () => {
    const { upstream, io, client } = await established();
    client.send(ACK, bytes('far'), { seq: client.seq + 70_000 });
    assert.equal(upstream.written.length, 0);
    assert.equal(io.takeTcp()[0]!.ack, client.seq);
  });

  it('pauses the upstream when the send buffer is full and resumes when acknowledged', async () => {
    const { upstream, io, client } = await established({ tcp: { sendBufferBytes: 10_000 } });
    upstream.handlers!.data(new Uint8Array(12_000));
    assert.ok(upstream.paused);
    await tick();
    const sent = io.takeTcp();
    const last = sent.at(-1)!;
    client.send(ACK, undefined, { ack: (last.seq + last.payload.length) >>> 0 });
    assert.ok(!upstream.paused);
  });
});

describe('TCP close and reset', () => {
  it('client FIN first: half-closes upstream, then FIN back when upstream ends', async () => {
    const { upstream, io, client, stack } = await established();
    client.send(FIN | ACK);
    client.seq += 1;
    await tick();
    assert.ok(upstream.ended);
    assert.equal(io.takeTcp().at(-1)!.ack, client.seq);
    upstream.handlers!.data(bytes('bye'));
    upstream.handlers!.end();
    await tick();
    const out = io.takeTcp();
    assert.equal(Buffer.from(out[0]!.payload).toString(), 'bye');
    const fin = out.at(-1)!;
    assert.equal(fin.flags & FIN, FIN);
    client.send(ACK, undefined, { ack: (fin.seq + 1) >>> 0 });
    assert.equal(stack.flowCount, 0, 'LAST-ACK -> CLOSED');
  });

  it('upstream end first: FIN, then the client FIN, then a short TIME-WAIT', async () => {
    const { upstream, io, client, stack, clock } = await established({ tcp: { timeWaitMs: 500 } });
    upstream.handlers!.end();
    await tick();
    const [fin] = io.takeTcp();
    assert.equal(fin!.flags, FIN | ACK);
    client.ack = (fin!.seq + 1) >>> 0;
    client.send(ACK);
    client.send(FIN | ACK);
    client.seq += 1;
    const [lastAck] = io.takeTcp();
    assert.equal(lastAck!.ack, client.seq);
    assert.ok(upstream.ended);
    assert.equal(stack.flowCount, 1, 'TIME-WAIT keeps the flow');
    client.send(FIN | ACK, undefined, { seq: client.seq - 1 });
    assert.equal(io.takeTcp()[0]!.ack, client.seq, 'a retransmitted FIN is re-ACKed in TIME-WAIT');
    clock.advance(500);
    assert.equal(stack.flowCount, 0);
  });

  it('retransmits an unacknowledged FIN', async () => {
    const { upstream, io, clock } = await established();
    upstream.handlers!.end();
    await tick();
    const [fin] = io.takeTcp();
    clock.advance(1000);
    const [again] = io.takeTcp();
    assert.equal(again!.flags & FIN, FIN);
    assert.equal(again!.seq, fin!.seq);
  });

  it('an exact RST closes the flow; an in-window inexact RST gets a challenge ACK', async () => {
    const { upstream, io, client, stack } = await established();
    client.send(RST, undefined, { seq: client.seq + 100 });
    assert.equal(stack.flowCount, 1, 'RFC 5961: inexact RST does not reset');
    assert.equal(io.takeTcp()[0]!.flags, ACK, 'challenge ACK');
    client.send(RST, undefined, { seq: client.seq + 100_000 });
    assert.equal(stack.flowCount, 1);
    assert.equal(io.takeTcp().length, 0, 'an out-of-window RST is ignored silently');
    client.send(RST);
    assert.equal(stack.flowCount, 0);
    assert.ok(upstream.destroyed);
  });

  it('a SYN on an established flow gets a challenge ACK', async () => {
    const { io, client, stack } = await established();
    client.send(SYN, undefined, { seq: client.seq + 5 });
    assert.equal(io.takeTcp()[0]!.flags, ACK);
    assert.equal(stack.flowCount, 1);
  });

  it('an ACK for data never sent is answered and ignored', async () => {
    const { io, client, stack } = await established();
    client.send(ACK, undefined, { ack: client.ack + 5000 });
    assert.equal(io.takeTcp()[0]!.flags, ACK);
    assert.equal(stack.flowCount, 1);
  });

  it('an upstream error resets the client', async () => {
    const { upstream, io, stack } = await established();
    upstream.handlers!.close(new Error('stream closed by exit'));
    assert.equal(io.takeTcp()[0]!.flags & RST, RST);
    assert.equal(stack.flowCount, 0);
  });

  it('close() resets every flow and closes the device', async () => {
    const { io, stack, upstream } = await established();
    stack.close();
    assert.equal(io.takeTcp()[0]!.flags & RST, RST);
    assert.ok(io.closed);
    assert.ok(upstream.destroyed);
  });
});
