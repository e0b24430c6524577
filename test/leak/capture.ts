/**
 * Captures the host's uplink (on the router side) while a scenario runs, and
 * returns what the leak oracle makes of it.
 */
import { join } from 'node:path';
import { readPcapFile, startCapture } from '../harness/pcap.ts';
import { run } from '../harness/run.ts';
import { waitFor } from '../harness/wait.ts';
import { findLeaks, type LeakReport } from './leak-oracle.ts';
import { ADDR, PYTHON, type Topology } from './topology.ts';

const MARKER_PORT = 9;
const MARKER_PY = `import socket,sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'end-of-scenario', (sys.argv[1], ${MARKER_PORT}))`;

/** Captures while `body` runs; returns the packets the host leaked and the allowed ones. */
export async function captured(topo: Topology, name: string, body: () => Promise<void>): Promise<LeakReport> {
  const capture = await startCapture({ netns: topo.router, iface: 'rt0', file: join(topo.dir, `${name}.pcap`) });
  try {
    await body();
    // tcpdump may drop what it has not read yet when stopped: wait until a
    // marker sent after the body shows up in the file (same interface, in order).
    await waitFor(async () => {
      await run(PYTHON, ['-c', MARKER_PY, ADDR.sink4], { netns: topo.router, timeoutMs: 5_000 });
      return readPcapFile(capture.file).packets.some((p) => p.src === ADDR.router4 && p.dstPort === MARKER_PORT);
    }, { timeoutMs: 10_000, what: 'the capture marker', intervalMs: 100 });
  } finally {
    await capture.stop().catch(() => {});
  }
  return findLeaks(readPcapFile(capture.file));
}
