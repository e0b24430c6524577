import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { isElf, readElfDeps } from '../../src/elf.ts';

/** A minimal ELF64 LE: one PT_LOAD at vaddr 0x1000 (file offset 0), one PT_INTERP, one PT_DYNAMIC with two DT_NEEDED. */
function tinyElf(machine: number): Buffer {
  const buf = Buffer.alloc(0x400);
  buf.writeUInt32BE(0x7f454c46, 0);
  buf[4] = 2; buf[5] = 1; buf[6] = 1;
  buf.writeUInt16LE(3, 16); // ET_DYN
  buf.writeUInt16LE(machine, 18);
  buf.writeBigUInt64LE(64n, 32); // e_phoff
  buf.writeUInt16LE(56, 54); // e_phentsize
  buf.writeUInt16LE(3, 56); // e_phnum
  const ph = (i: number, type: number, offset: number, vaddr: number, filesz: number) => {
    const p = 64 + i * 56;
    buf.writeUInt32LE(type, p);
    buf.writeBigUInt64LE(BigInt(offset), p + 8);
    buf.writeBigUInt64LE(BigInt(vaddr), p + 16);
    buf.writeBigUInt64LE(BigInt(filesz), p + 32);
  };
  ph(0, 1, 0, 0x1000, 0x400);
  ph(1, 3, 0x200, 0x1200, 28);
  ph(2, 2, 0x300, 0x1300, 64);
  buf.write('/lib/ld-linux-aarch64.so.1\0', 0x200);
  const strtab = 0x280;
  buf.write('\0libc.so.6\0libz.so.1\0', strtab);
  const dyn = (i: number, tag: bigint, val: bigint) => { buf.writeBigInt64LE(tag, 0x300 + i * 16); buf.writeBigUInt64LE(val, 0x308 + i * 16); };
  dyn(0, 1n, 1n);
  dyn(1, 1n, 11n);
  dyn(2, 5n, BigInt(0x1000 + strtab));
  dyn(3, 0n, 0n);
  return buf;
}

describe('ELF reader', () => {
  it('reads the interpreter and DT_NEEDED through the string table address', () => {
    const deps = readElfDeps(tinyElf(183));
    assert.equal(deps.machine, 183);
    assert.equal(deps.interpreter, '/lib/ld-linux-aarch64.so.1');
    assert.deepEqual(deps.needed, ['libc.so.6', 'libz.so.1']);
  });

  it('reads a real dynamically linked binary (this node)', () => {
    const deps = readElfDeps(readFileSync(process.execPath));
    assert.ok(deps.needed.includes('libc.so.6'), JSON.stringify(deps));
    assert.match(deps.interpreter ?? '', /ld-linux/);
  });

  it('rejects non-ELF and 32-bit input', () => {
    assert.equal(isElf(Buffer.from('#!/bin/sh\n')), false);
    assert.throws(() => readElfDeps(Buffer.from('#!/bin/sh\n'.padEnd(64))), /not an ELF/);
    const e32 = tinyElf(62);
    e32[4] = 1;
    assert.throws(() => readElfDeps(e32), /64-bit/);
  });
});
