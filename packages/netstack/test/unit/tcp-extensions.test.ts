// TCP extensions for throughput: window scaling (RFC 7323 §2), ACK coalescing, SACK as a receiver (RFC 2018).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReassemblyQueue } from '../../src/reassembly.ts';
import { scaledWindowField, windowShiftFor } from '../../src/tcp-flow.ts';
import { ACK, FIN, PSH } from '../../src/tcp-segment.ts';
import { establishFlow, FakeUpstream, tick } from './harness.ts';

const KiB = 1024;

describe('window-scale arithmetic', () => {
  it('picks the smallest shift that expresses the window, at most 14', () => {
    assert.equal(windowShiftFor(0), 0);
    assert.equal(windowShiftFor(65_535), 0);
    assert.equal(windowShiftFor(65_536), 1);
    assert.equal(windowShiftFor(131_070), 1);
    assert.equal(windowShiftFor(131_071), 2);
    assert.equal(windowShiftFor(512 * KiB), 4, '65535 << 3 is 8 bytes short of 512 KiB');
    assert.equal(windowShiftFor(2 ** 30), 14);
    assert.equal(windowShiftFor(2 ** 40), 14, 'never beyond RFC 7323 §2.3');
  });

  it('rounds the window field up, so scaling never retracts the right edge, and clamps it to 16 bits', () => {
    assert.equal(scaledWindowField(0, 4), 0);
    assert.equal(scaledWindowField(1, 4), 1);
    assert.equal(scaledWindowField(16, 4), 1);
    assert.equal(scaledWindowField(17, 4), 2);
    assert.equal(scaledWindowField(65_535 * 16, 4), 65_535);
    assert.equal(scaledWindowField(65_535 * 16 + 1, 4), 65_535);
    assert.equal(scaledWindowField(65_535, 0), 65_535);
    assert.equal(scaledWindowField(70_000, 0), 65_535);
    assert.equal(scaledWindowField(-5, 3), 0);
  });
});

describe('TCP window scaling', () => {
  it('answers a SYN that offers window scaling with our shift, and an unscaled SYN-ACK window', async () => {
    const { synAck } = await establishFlow({ tcp: { receiveWindow: 512 * KiB } }, { wscale: 7 });
    assert.equal(synAck.wscale, 4);
    assert.equal(synAck.window, 65_535, 'a SYN-ACK window is never scaled (RFC 7323 §2.2)');
  });

  it('does not offer window scaling to a client that did not, and keeps the window within 16 bits', async () => {
    const { synAck, client, io, upstream } = await establishFlow({ tcp: { receiveWindow: 512 * KiB } });
    assert.equal(synAck.wscale, undefined);
    client.send(ACK, new Uint8Array(1000));
    await tick();
    assert.equal(upstream.written.length, 1);
    assert.equal(io.takeTcp()[0]!.window, 65_535 - 1000, 'the unscaled window is capped at 65535, not 512 KiB');
  });

  it('does not offer window scaling when configured off, even to a client that offers it', async () => {
    const { synAck, client, io, upstream } = await establishFlow({ tcp: { windowScaling: false } }, { wscale: 7, mss: 1000, window: 3 }, 3);
    assert.equal(synAck.wscale, undefined);
    upstream.handlers!.data(new Uint8Array(5000));
    await tick();
    assert.deepEqual(io.takeTcp().map((s) => s.payload.length), [3], "without scaling in effect, the client's window field 3 means 3 bytes (not 3 << 7)");
    client.ack = (client.ack + 3) >>> 0;
    client.send(ACK, undefined, { window: 2000 });
    await tick();
    assert.deepEqual(io.takeTcp().map((s) => s.payload.length), [1000, 1000], 'the window field counts bytes');
  });

  it("scales the client's windows by its shift (but not its SYN's)", async () => {
    // The SYN's window 3 is unscaled; every later window field 125 << 7 = 16,000 bytes.
    const { upstream, io } = await establishFlow({}, { wscale: 7, mss: 1000, window: 3 }, 125);
    upstream.handlers!.data(new Uint8Array(20_000));
    await tick();
    const sent = io.takeTcp();
    assert.equal(sent.length, 16);
    assert.equal(sent.reduce((n, s) => n + s.payload.length, 0), 16_000, 'exactly the scaled window is in flight');
  });

  it('advertises a scaled window of receiveWindow minus what the upstream still holds', async () => {
    const { client, io, upstream } = await establishFlow({ tcp: { receiveWindow: 512 * KiB } }, { wscale: 2 });
    client.send(ACK, new Uint8Array(1000));
    await tick();
    const [first] = io.takeTcp();
    assert.equal(first!.window * 16, 512 * KiB, 'with an empty upstream the whole window is offered (field << 4)');
    client.seq += 1000;
    // The upstream now holds everything: the window may not open, and may not retract either.
    upstream.writableLength = 512 * KiB;
    client.send(ACK, new Uint8Array(1000));
    await tick();
    const [second] = io.takeTcp();
    const rightEdgeLeft = 512 * KiB - 1000; // what the first ACK offered beyond this segment
    assert.ok(second!.window * 16 >= rightEdgeLeft, 'the right edge never retracts');
    assert.ok(second!.window * 16 < rightEdgeLeft + 16, 'it is rounded up by less than one scale unit');
  });

  it("accepts data up to the SYN-ACK's unscaled window before the first scaled advertisement", async () => {
    const { client, upstream } = await establishFlow({ tcp: { receiveWindow: 512 * KiB } }, { wscale: 7 });
    // One batch, so that no ACK (with a scaled, larger window) goes out in between.
    const batch = Array.from({ length: 66 }, (_, i) => client.packet(ACK, new Uint8Array(1000), { seq: client.seq + i * 1000 }));
    client.stack.input(batch);
    await tick();
    assert.equal(upstream.written.reduce((n, w) => n + w.length, 0), 65_535);
  });

  it('takes more than 64 KiB in flight from a client once scaling is in effect', async () => {
    const { client, upstream, io } = await establishFlow({ tcp: { receiveWindow: 512 * KiB } }, { wscale: 7 });
    client.send(ACK, new Uint8Array(1000));
    client.seq += 1000;
    await tick();
    io.takeTcp();
    const batch = Array.from({ length: 200 }, (_, i) => client.packet(ACK, new Uint8Array(1000), { seq: client.seq + i * 1000 }));
    client.stack.input(batch);
    await tick();
    assert.equal(upstream.written.reduce((n, w) => n + w.length, 0), 201_000);
    const acks = io.takeTcp();
    assert.equal(acks.at(-1)!.ack, (client.seq + 200_000) >>> 0);
  });
});

/** A FakeUpstream that supports cork/uncork, and records what each uncork released. */
class CorkingUpstream extends FakeUpstream {
  corked = false;
  held: Uint8Array[] = [];
  flushes: number[] = [];
  override write(data: Uint8Array): void {
    if (this.corked) this.held.push(Uint8Array.from(data));
    else super.write(data);
  }
  cork(): void {
    this.corked = true;
  }
  uncork(): void {
    this.corked = false;
    this.flushes.push(this.held.reduce((n, h) => n + h.length, 0));
    for (const h of this.held.splice(0)) super.write(h);
  }
}

describe('upstream write coalescing', () => {
  it("hands a batch's in-order data to a corkable upstream in one flush, before the ACK", async () => {
    const { client, upstream, io } = await establishFlow({}, {}, 65535, new CorkingUpstream());
    const batch = Array.from({ length: 5 }, (_, i) => client.packet(ACK, new Uint8Array(1000), { seq: client.seq + i * 1000 }));
    client.stack.input(batch);
    assert.equal(upstream.corked, true, 'corked while the batch is read');
    await tick();
    assert.equal(upstream.corked, false);
    assert.deepEqual(upstream.flushes, [5000]);
    assert.equal(upstream.received.length, 5000);
    assert.equal(io.takeTcp().at(-1)!.ack, (client.seq + 5000) >>> 0);
  });

  it('uncorks before ending the upstream on the client FIN', async () => {
    const { client, upstream } = await establishFlow({}, {}, 65535, new CorkingUpstream());
    client.send(ACK | FIN, new Uint8Array(10));
    assert.equal(upstream.corked, false);
    assert.equal(upstream.ended, true);
    assert.equal(upstream.received.length, 10, 'the data went out before the end');
  });
});

describe('ACK coalescing', () => {
  it('acknowledges a batch of in-order segments with one ACK, at the end of the batch', async () => {
    const { client, io } = await establishFlow();
    const batch = Array.from({ length: 5 }, (_, i) => client.packet(ACK, new Uint8Array(1000), { seq: client.seq + i * 1000 }));
    client.stack.input(batch);
    assert.equal(io.sent.length, 0, 'nothing is sent while the batch is being read');
    await tick();
    const acks = io.takeTcp();
    assert.equal(acks.length, 1);
    assert.equal(acks[0]!.ack, (client.seq + 5000) >>> 0);
  });

  it('acknowledges each batch', async () => {
    const { client, io } = await establishFlow();
    client.stack.input([client.packet(ACK, new Uint8Array(100))]);
    await tick();
    client.stack.input([client.packet(ACK, new Uint8Array(100), { seq: client.seq + 100 })]);
    await tick();
    assert.deepEqual(io.takeTcp().map((s) => s.ack - client.seq), [100, 200]);
  });

  it('answers an out-of-order segment at once with a duplicate ACK, before the batch ends', async () => {
    const { client, io } = await establishFlow();
    client.stack.input([client.packet(ACK, new Uint8Array(100), { seq: client.seq + 1000 })]);
    const [dup] = io.takeTcp();
    assert.equal(dup!.ack, client.seq, 'the ACK names the hole');
  });

  it('piggybacks the ACK on data when there is data to send', async () => {
    const { client, io, upstream } = await establishFlow();
    client.stack.input([client.packet(ACK, new Uint8Array(100))]);
    upstream.handlers!.data(new Uint8Array(300));
    await tick();
    const out = io.takeTcp();
    assert.equal(out.length, 1, 'no separate pure ACK');
    assert.equal(out[0]!.flags, ACK | PSH);
    assert.equal(out[0]!.payload.length, 300);
    assert.equal(out[0]!.ack, (client.seq + 100) >>> 0);
  });
});

/** The SACK blocks in a raw IPv4+TCP packet from the stack (the parser does not read them). */
function sackBlocksOf(packet: Uint8Array): [number, number][] | undefined {
  const tcp = packet.subarray(20);
  const view = new DataView(tcp.buffer, tcp.byteOffset, tcp.length);
  const headerLength = (tcp[12]! >> 4) * 4;
  for (let i = 20; i < headerLength; ) {
    const kind = tcp[i]!;
    if (kind === 0) break;
    if (kind === 1) {
      i++;
      continue;
    }
    const length = tcp[i + 1]!;
    if (kind === 5) {
      const blocks: [number, number][] = [];
      for (let o = i + 2; o < i + length; o += 8) blocks.push([view.getUint32(o), view.getUint32(o + 4)]);
      return blocks;
    }
    i += length;
  }
  return undefined;
}

describe('ReassemblyQueue', () => {
  const data = (n: number): Uint8Array => new Uint8Array(n);

  it('delivers held segments in order up to the next hole, each new byte once', () => {
    const q = new ReassemblyQueue(16);
    q.hold(300, data(100), false);
    q.hold(100, data(100), false);
    q.hold(150, data(100), false); // overlaps the one before
    let rcvNxt = 100;
    const delivered: [number, number][] = [];
    q.drain(() => rcvNxt, (d) => {
      delivered.push([rcvNxt, d.length]);
      rcvNxt += d.length;
      return true;
    });
    assert.deepEqual(delivered, [[100, 100], [200, 50]], 'the overlap is cut, and 300 waits for the hole at 250');
    assert.equal(q.isEmpty, false);
    assert.deepEqual(q.sackBlocks(4), [[300, 400]]);
  });

  it('keeps a duplicate once and respects its count bound', () => {
    const q = new ReassemblyQueue(2);
    q.hold(100, data(10), false);
    q.hold(100, data(10), false);
    q.hold(102, data(5), false); // inside the first
    q.hold(200, data(10), false);
    q.hold(300, data(10), false); // over the bound: dropped (the client retransmits)
    assert.deepEqual(q.sackBlocks(4), [[200, 210], [100, 110]]);
  });

  it('stops draining when the flow can take no more', () => {
    const q = new ReassemblyQueue(16);
    q.hold(0, data(10), false);
    q.hold(10, data(10), false);
    let calls = 0;
    q.drain(() => 0 + calls * 10, () => (calls++, false));
    assert.equal(calls, 1);
  });
});

describe('TCP SACK as a receiver (RFC 2018)', () => {
  it('permits SACK only when the SYN does and SACK is enabled', async () => {
    assert.equal((await establishFlow({}, { sackPermitted: true })).synAck.sackPermitted, true);
    assert.equal((await establishFlow({})).synAck.sackPermitted, false);
    assert.equal((await establishFlow({ tcp: { sack: false } }, { sackPermitted: true })).synAck.sackPermitted, false);
  });

  it('reports held out-of-order data in SACK blocks, the latest first, merged where contiguous', async () => {
    const { client, io } = await establishFlow({}, { sackPermitted: true });
    const base = client.seq;
    const at = (offset: number): Uint8Array => client.packet(ACK, new Uint8Array(100), { seq: base + offset });
    client.stack.input([at(200)]);
    assert.deepEqual(sackBlocksOf(io.sent.at(-1)!), [[base + 200, base + 300]]);
    client.stack.input([at(500)]);
    assert.deepEqual(sackBlocksOf(io.sent.at(-1)!), [[base + 500, base + 600], [base + 200, base + 300]]);
    client.stack.input([at(300)]);
    assert.deepEqual(sackBlocksOf(io.sent.at(-1)!), [[base + 200, base + 400], [base + 500, base + 600]], 'contiguous segments form one block');
    client.stack.input([at(300)]); // a duplicate of a held segment
    assert.deepEqual(sackBlocksOf(io.sent.at(-1)!), [[base + 200, base + 400], [base + 500, base + 600]]);
    const dupAcks = io.takeTcp();
    assert.ok(dupAcks.every((s) => s.ack === base), 'every one is a duplicate ACK for the hole');
  });

  it('drops the blocks a cumulative ACK covers, and sends none once every hole is filled', async () => {
    const { client, io, upstream } = await establishFlow({}, { sackPermitted: true });
    const base = client.seq;
    const at = (offset: number): Uint8Array => client.packet(ACK, new Uint8Array(100), { seq: base + offset });
    client.stack.input([at(200)]);
    client.stack.input([at(400)]);
    io.sent.length = 0;
    client.stack.input([at(0), at(100)]);
    await tick();
    assert.deepEqual(sackBlocksOf(io.sent.at(-1)!), [[base + 400, base + 500]]);
    assert.equal(io.takeTcp().at(-1)!.ack, base + 300);
    client.stack.input([at(300)]);
    await tick();
    assert.equal(sackBlocksOf(io.sent.at(-1)!), undefined);
    assert.equal(io.takeTcp().at(-1)!.ack, base + 500);
    assert.equal(upstream.written.reduce((n, w) => n + w.length, 0), 500, 'everything was delivered once, in order');
  });

  it('sends no SACK blocks when SACK was not permitted', async () => {
    const { client, io } = await establishFlow({});
    client.stack.input([client.packet(ACK, new Uint8Array(100), { seq: client.seq + 200 })]);
    assert.equal(sackBlocksOf(io.sent.at(-1)!), undefined);
  });

  it('reports at most four blocks', async () => {
    const { client, io } = await establishFlow({}, { sackPermitted: true });
    for (let i = 1; i <= 6; i++) client.stack.input([client.packet(ACK, new Uint8Array(10), { seq: client.seq + i * 100 })]);
    const blocks = sackBlocksOf(io.sent.at(-1)!)!;
    assert.equal(blocks.length, 4);
    assert.deepEqual(blocks[0], [client.seq + 600, client.seq + 610], 'the latest first');
  });
});

describe('retransmission timer restart (RFC 6298 5.3), kept lazily', () => {
  it('restarts the RTO from the ACK of new data, not from the first transmission', async () => {
    const { client, io, upstream, clock } = await establishFlow();
    upstream.handlers!.data(new Uint8Array(3000));
    await tick();
    const sent = io.takeTcp();
    assert.deepEqual(sent.map((s) => s.payload.length), [1460, 1460, 80]);
    clock.advance(600);
    client.send(ACK, undefined, { ack: (sent[0]!.seq + 1460) >>> 0 });
    await tick();
    assert.equal(io.takeTcp().length, 0);
    // The 600 ms sample makes the RTO 600 + 4 * 300 = 1800 ms, counted from the ACK.
    clock.advance(1799);
    assert.equal(io.takeTcp().length, 0, 'the timer set at the first transmission (1000 ms) did not fire a retransmission');
    clock.advance(1);
    const [again] = io.takeTcp();
    assert.equal(again!.seq, (sent[0]!.seq + 1460) >>> 0, 'the first unacknowledged segment goes again');
  });
});
