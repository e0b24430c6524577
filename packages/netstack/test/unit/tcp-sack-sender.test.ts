// SACK as a sender (RFC 2018, RFC 6675 style): the client's SACK blocks make loss
// recovery retransmit only the holes, each once per recovery.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { SackScoreboard } from '../../src/sack-scoreboard.ts';
import { ACK, buildTcpPacket, parseTcp } from '../../src/tcp-segment.ts';
import { establishFlow, tick } from './harness.ts';

const MSS = 1460;

describe('SackScoreboard', () => {
  it('merges blocks, ignores those outside [SND.UNA, SND.NXT), and finds the holes between them', () => {
    const board = new SackScoreboard();
    board.add([[300, 400], [100, 200], [200, 250], [900, 1200], [0, 50], [500, 400]], 10, 1000);
    assert.deepEqual(board.nextHole(10), [10, 100]);
    assert.deepEqual(board.nextHole(100), [250, 300], 'contiguous blocks are one range');
    assert.deepEqual(board.nextHole(260), [260, 300]);
    assert.equal(board.nextHole(400), undefined, 'past the highest SACKed byte is not a hole');
  });

  it('trims to a cumulative ACK, wraps around 2^32, and forgets everything on clear()', () => {
    const board = new SackScoreboard();
    const una = 0xffffff00;
    board.add([[(una + 0x200) >>> 0, (una + 0x300) >>> 0]], una, (una + 0x1000) >>> 0);
    assert.deepEqual(board.nextHole(una), [una, (una + 0x200) >>> 0]);
    board.advance((una + 0x280) >>> 0);
    assert.equal(board.nextHole((una + 0x280) >>> 0), undefined);
    assert.equal(board.isEmpty, false);
    board.advance((una + 0x300) >>> 0);
    assert.equal(board.isEmpty, true);
    board.add([[20, 30]], 0, 100);
    board.clear();
    assert.equal(board.isEmpty, true);
  });

  it('keeps at most maxRanges ranges, the ones nearest SND.UNA', () => {
    const board = new SackScoreboard(2);
    board.add([[700, 710], [500, 510], [300, 310], [100, 110]], 0, 1000);
    assert.deepEqual(board.nextHole(0), [0, 100]);
    assert.deepEqual(board.nextHole(110), [110, 300]);
    assert.equal(board.nextHole(310), undefined);
  });
});

it('parses the SACK blocks a segment carries', () => {
  const blocks: [number, number][] = [[1, 2], [0xfffffff0, 5], [100, 200], [300, 400]];
  const packet = buildTcpPacket({ src: 1, dst: 2, srcPort: 80, dstPort: 40000, seq: 1, ack: 2, flags: ACK, window: 100, sack: blocks });
  const tcp = parseTcp(packet.subarray(20), 1, 2);
  assert.ok(tcp.ok);
  assert.deepEqual(tcp.value.sack, blocks);
});

describe('TCP SACK as a sender', () => {
  async function lossyFlight(sackPermitted: boolean) {
    const env = await establishFlow({}, { sackPermitted });
    const { client, upstream } = env;
    upstream.handlers!.data(new Uint8Array(10 * MSS));
    await tick();
    const sent = env.io.takeTcp();
    assert.equal(sent.length, 10);
    const s = (i: number): number => (client.ack + i * MSS) >>> 0; // where segment i starts
    const dupAck = (blocks: [number, number][]): void => client.send(ACK, undefined, { ack: s(1), sack: blocks });
    // Segments 1 and 3 are lost: the client acknowledges 0 and SACKs 2 and 4..9.
    client.send(ACK, undefined, { ack: s(1), sack: [[s(2), s(3)]] });
    return { ...env, client, s, dupAck };
  }

  it('retransmits only the holes the SACK blocks reveal, each once per recovery', async () => {
    const { io, s, dupAck, client } = await lossyFlight(true);
    dupAck([[s(4), s(10)], [s(2), s(3)]]);
    dupAck([[s(4), s(10)], [s(2), s(3)]]);
    assert.equal(io.takeTcp().length, 0, 'two duplicate ACKs are not yet a loss');
    dupAck([[s(4), s(10)], [s(2), s(3)]]);
    assert.deepEqual(io.takeTcp().map((r) => [r.seq, r.payload.length]), [[s(1), MSS], [s(3), MSS]]);
    dupAck([[s(4), s(10)], [s(2), s(3)]]);
    assert.equal(io.takeTcp().length, 0, 'a hole is retransmitted once per recovery');
    client.send(ACK, undefined, { ack: s(3), sack: [[s(4), s(10)]] });
    assert.equal(io.takeTcp().length, 0, 'the partial ACK finds no hole that was not retransmitted');
    client.send(ACK, undefined, { ack: s(10) });
    await tick();
    assert.equal(io.takeTcp().length, 0, 'everything is acknowledged');
  });

  it('retransmits a hole revealed later in the same recovery', async () => {
    const { io, s, dupAck } = await lossyFlight(true);
    for (let i = 0; i < 3; i++) dupAck([[s(4), s(6)], [s(2), s(3)]]);
    assert.deepEqual(io.takeTcp().map((r) => r.seq), [s(1), s(3)]);
    dupAck([[s(7), s(10)], [s(4), s(6)], [s(2), s(3)]]);
    assert.deepEqual(io.takeTcp().map((r) => r.seq), [s(6)]);
  });

  it('after a retransmission timeout, resends only the holes the timeout did not', async () => {
    const { io, s, dupAck, clock } = await lossyFlight(true);
    clock.advance(1000);
    assert.deepEqual(io.takeTcp().map((r) => r.seq), [s(1)], 'the timeout resends the first segment');
    dupAck([[s(4), s(10)], [s(2), s(3)]]);
    assert.deepEqual(io.takeTcp().map((r) => r.seq), [s(3)]);
  });

  it("ignores the client's SACK blocks when SACK was not negotiated (NewReno)", async () => {
    const { io, s, dupAck } = await lossyFlight(false);
    for (let i = 0; i < 3; i++) dupAck([[s(4), s(10)], [s(2), s(3)]]);
    assert.deepEqual(io.takeTcp().map((r) => r.seq), [s(1)]);
  });
});

it('every retransmission under random ACKs and SACK blocks carries the bytes of its sequence numbers', async () => {
  // Byte k of the upstream stream is pattern(k): a wrong queue offset shows as a mismatch.
  const pattern = (k: number): number => (k * 13 + (k >> 9)) & 0xff;
  const total = 40 * MSS;
  const ackEvent = fc.record({
    ackAt: fc.integer({ min: 0, max: total }),
    blocks: fc.array(fc.tuple(fc.integer({ min: -3000, max: total + 3000 }), fc.integer({ min: 0, max: 8000 })), { maxLength: 4 }),
    window: fc.constantFrom(65535, 65535, 0, 4000),
    advanceMs: fc.constantFrom(0, 0, 10, 1500),
  });
  let checked = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(ackEvent, { maxLength: 40 }), async (events) => {
      const env = await establishFlow({}, { sackPermitted: true });
      const { client, upstream } = env;
      const base = client.ack;
      upstream.handlers!.data(Uint8Array.from({ length: total }, (_, k) => pattern(k)));
      await tick();
      let acked = 0;
      for (const e of events) {
        acked = Math.max(acked, Math.min(e.ackAt, total));
        const sack = e.blocks.map(([at, length]): [number, number] => [(base + at) >>> 0, (base + at + length) >>> 0]);
        client.send(ACK, undefined, { ack: (base + acked) >>> 0, sack, window: e.window });
        env.clock.advance(e.advanceMs);
        await tick();
        for (const segment of env.io.takeTcp()) {
          const offset = (segment.seq - base) >>> 0;
          segment.payload.forEach((byte, i) => assert.equal(byte, pattern(offset + i), `byte ${offset + i}`));
          checked += segment.payload.length;
        }
      }
      env.clock.advance(10 * 60_000);
      env.stack.close();
      assert.equal(env.stack.flowCount, 0);
    }),
    { numRuns: 150 },
  );
  assert.ok(checked > 100_000, `bytes checked: ${checked}`);
});
