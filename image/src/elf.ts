/**
 * Just enough of an ELF reader to compute a binary's library closure from the
 * extracted packages (never the build host's libraries): the program
 * interpreter (PT_INTERP) and the DT_NEEDED sonames. 64-bit little-endian
 * only, which covers x86_64 and aarch64.
 */

export interface ElfDeps {
  /** PT_INTERP, e.g. /lib64/ld-linux-x86-64.so.2; undefined for static binaries. */
  interpreter: string | undefined;
  /** DT_NEEDED entries in file order. */
  needed: string[];
  /** e_machine: 62 = x86_64, 183 = aarch64. */
  machine: number;
}

const PT_INTERP = 3;
const PT_DYNAMIC = 2;
const PT_LOAD = 1;
const DT_NULL = 0n;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

export function isElf(data: Buffer): boolean {
  return data.length >= 64 && data.readUInt32BE(0) === 0x7f454c46;
}

function cString(data: Buffer, offset: number): string {
  const end = data.indexOf(0, offset);
  if (end < 0) throw new Error('ELF: unterminated string');
  return data.toString('utf8', offset, end);
}

/** Parses the interpreter and DT_NEEDED list. Throws on anything but ELF64 LE. */
export function readElfDeps(data: Buffer): ElfDeps {
  if (!isElf(data)) throw new Error('not an ELF file');
  if (data[4] !== 2 || data[5] !== 1) throw new Error('ELF: only 64-bit little-endian is supported');
  const machine = data.readUInt16LE(18);
  const phoff = Number(data.readBigUInt64LE(32));
  const phentsize = data.readUInt16LE(54);
  const phnum = data.readUInt16LE(56);
  let interpreter: string | undefined;
  let dynamic: { offset: number; size: number } | undefined;
  const loads: Array<{ vaddr: bigint; offset: bigint; filesz: bigint }> = [];
  for (let i = 0; i < phnum; i++) {
    const p = phoff + i * phentsize;
    const type = data.readUInt32LE(p);
    const offset = data.readBigUInt64LE(p + 8);
    const vaddr = data.readBigUInt64LE(p + 16);
    const filesz = data.readBigUInt64LE(p + 32);
    if (type === PT_INTERP) interpreter = cString(data, Number(offset));
    if (type === PT_DYNAMIC) dynamic = { offset: Number(offset), size: Number(filesz) };
    if (type === PT_LOAD) loads.push({ vaddr, offset, filesz });
  }
  const needed: number[] = [];
  let strtabAddr: bigint | undefined;
  if (dynamic) {
    for (let p = dynamic.offset; p + 16 <= dynamic.offset + dynamic.size; p += 16) {
      const tag = data.readBigInt64LE(p);
      const val = data.readBigUInt64LE(p + 8);
      if (tag === DT_NULL) break;
      if (tag === DT_NEEDED) needed.push(Number(val));
      if (tag === DT_STRTAB) strtabAddr = val;
    }
  }
  if (needed.length > 0 && strtabAddr === undefined) throw new Error('ELF: DT_NEEDED without DT_STRTAB');
  const names = needed.map((n) => {
    const seg = loads.find((l) => strtabAddr! >= l.vaddr && strtabAddr! < l.vaddr + l.filesz);
    if (!seg) throw new Error('ELF: DT_STRTAB is outside every PT_LOAD');
    return cString(data, Number(strtabAddr! - seg.vaddr + seg.offset) + n);
  });
  return { interpreter, needed: names, machine };
}
