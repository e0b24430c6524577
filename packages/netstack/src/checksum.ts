/**
 * The Internet checksum (RFC 1071) and the IPv4/IPv6 pseudo-header sums that
 * TCP and UDP add to it. Sums are kept unfolded (32-bit) until the end so that
 * pieces (pseudo-header, header, payload) can be added cheaply.
 */

/** Adds the 16-bit big-endian words of data[start, end) to sum. An odd last byte is padded with zero. */
export function sumWords(data: Uint8Array, start = 0, end = data.length, sum = 0): number {
  let i = start;
  const last = end - 1;
  for (; i < last; i += 2) sum += (data[i]! << 8) | data[i + 1]!;
  if (i === last) sum += data[i]! << 8;
  // Fold now and then so the sum never leaves the safe-integer range.
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
