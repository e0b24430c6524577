/**
 * The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-header sums that
 * TCP and UDP add to it. Sums are kept unfolded (32-bit) until the end so that
 * pieces (pseudo-header, header, payload) can be added cheaply.
 */

/** Below this many bytes the plain byte loop is faster than setting up a word view. */
const WORD_LOOP_MIN = 64;

/**
 * Adds the 16-bit big-endian words of data[start, end) to sum. An odd last byte is padded with zero.
 *
 * Long ranges are summed four bytes at a time through an aligned Uint32Array view
 * (little-endian on every platform Node runs on). That is still the RFC 1071 sum:
 * one's-complement addition commutes with byte swapping (RFC 1071 §2(B)), so the
 * little-endian partial sum is folded and swapped back when the words it read
 * started on an even offset from `start`.
 */
export function sumWords(data: Uint8Array, start = 0, end = data.length, sum = 0): number {
  if (end - start >= WORD_LOOP_MIN && LITTLE_ENDIAN) return sumWordsAligned(data, start, end, sum);
  let i = start;
  const last = end - 1;
  for (; i < last; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i === last) sum += data[i]! << 8;
  // Fold now and then so the sum never leaves the safe-integer range.
  return sum > 0x7fffffff ? (sum & 0xffff) + Math.floor(sum / 0x10000) : sum;
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function sumWordsAligned(data: Uint8Array, start: number, end: number, sum: number): number {
  // [start, a): bytes up to a 4-byte boundary; [a, b): whole 32-bit words; [b, end): the rest.
  const a = start + ((4 - ((data.byteOffset + start) & 3)) & 3);
  const words = (end - a) >>> 2;
  const b = a + words * 4;
  for (let i = start; i < a; i++) sum += ((i - start) & 1) === 0 ? data[i]! << 8 : data[i]!;
  for (let i = b; i < end; i++) sum += ((i - start) & 1) === 0 ? data[i]! << 8 : data[i]!;
  const view = new Uint32Array(data.buffer, data.byteOffset + a, words);
  let le = 0;
  // At most 2^14 words per 64 KiB, each adding < 2^17: far below 2^53, so no folding inside the loop.
  for (let i = 0; i < words; i++) {
    const w = view[i]!;
    le += (w & 0xffff) + (w >>> 16);
  }
  while (le > 0xffff) le = (le & 0xffff) + Math.floor(le / 0x10000);
  // Little-endian words whose first byte sits at an even offset from start are byte-swapped big-endian words.
  if (((a - start) & 1) === 0) le = ((le & 0xff) << 8) | (le >>> 8);
  sum += le;
  return sum > 0x7fffffff ? (sum & 0xffff) + Math.floor(sum / 0x10000) : sum;
}

/** Folds a running sum to 16 bits and complements it: the value to put in a checksum field. */
export function finishChecksum(sum: number): number {
  while (sum > 0xffff) sum = (sum & 0xffff) + Math.floor(sum / 0x10000);
  return ~sum & 0xffff;
}

/** The Internet checksum of data[start, end). A region that contains a correct checksum yields 0. */
export function internetChecksum(data: Uint8Array, start = 0, end = data.length): number {
  return finishChecksum(sumWords(data, start, end));
}

/** The unfolded sum of the IPv4 pseudo-header (RFC 793 §3.1, RFC 768). Addresses are uint32. */
export function pseudoHeaderSumV4(src: number, dst: number, protocol: number, length: number): number {
  return (src >>> 16) + (src & 0xffff) + (dst >>> 16) + (dst & 0xffff) + protocol + length;
}

/** The unfolded sum of the IPv6 pseudo-header (RFC 8200 §8.1). Addresses are 16-byte arrays. */
export function pseudoHeaderSumV6(src: Uint8Array, dst: Uint8Array, nextHeader: number, length: number): number {
  let sum = sumWords(src, 0, 16);
  sum = sumWords(dst, 0, 16, sum);
  return sum + (length >>> 16) + (length & 0xffff) + nextHeader;
}
