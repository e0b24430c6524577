/** Static checks of the files that go into the VM; their behaviour is proven by the boot test. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { guestDir, BUSYBOX_APPLETS } from '../../src/rootfs.ts';

const SCRIPTS = ['init', 'udhcpc.script', 'acpi-power-button'];
const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));

describe('guest files', () => {
  it('shell scripts parse under busybox sh', { skip: busybox === undefined && !process.env.CI ? 'no busybox here' : false }, () => {
    assert.ok(busybox, 'busybox is needed (apt busybox-static)');
    for (const s of SCRIPTS) execFileSync(busybox, ['sh', '-n', join(guestDir(), s)], { timeout: 10_000 });
  });

  it('every command the scripts call is shipped (a busybox applet or a program in the image)', () => {
    const shipped = new Set<string>([...BUSYBOX_APPLETS, 'tor', 'nft', '/sbin/mke2fs', '/sbin/e2fsck', 'exit', 'trap', 'read', 'eval', 'set', 'export', 'umask', 'wait', 'return', 'continue', 'break', 'cd', 'local']);
    for (const s of SCRIPTS) {
      const text = readFileSync(join(guestDir(), s), 'utf8')
        .replace(/<<EOF\n[\s\S]*?\nEOF\n/g, '\n') // here-documents are data
        .replace(/"(?:[^"\\]|\\.)*"/g, '""') // so are quoted strings
        .replace(/'[^']*'/g, "''")
        .replace(/\$\(\([^)]*\)\)/g, '0') // arithmetic
        .replace(/(^|\s)#.*$/gm, '$1'); // and comments
      // Command positions: start of a line or after "|", "&&", "||", ";", "$(", "then", "do", "{".
      for (const m of text.matchAll(/(?:^|[|;{(]|&&|\|\||\$\(|\bthen\b|\bdo\b|\belse\b)[ \t]*([a-z/][a-z0-9_./-]*)(?=[ \t\n;])/gm)) {
        const cmd = m[1]!;
        if (['if', 'fi', 'for', 'while', 'done', 'case', 'esac', 'in', 'elif', 'else', 'then', 'do', 'say', 'fatal', 'shutdown', 'is_ipv4', 'is_mac', 'is_port', 'nic_by_mac', 'make_state_fs'].includes(cmd)) continue;
        if (cmd.startsWith('/') && !cmd.startsWith('/sbin/')) continue; // a path argument, not a command
        assert.ok(shipped.has(cmd), `${s} calls "${cmd}", which the image does not ship`);
      }
    }
  });

  it('the firewall file has the rules the design promises', () => {
    const nft = readFileSync(join(guestDir(), 'nftables.nft'), 'utf8');
    for (const rule of [
      'meta l4proto tcp redirect to :$trans_port',
      'udp dport 53 redirect to :$dns_port',
      'type filter hook forward priority filter; policy drop;',
      'ct state invalid drop',
      'oifname "wan" meta skuid $tor_uid accept',
      'meta nfproto ipv6 drop',
    ]) assert.ok(nft.includes(rule), `missing: ${rule}`);
    assert.equal((nft.match(/policy drop;/g) ?? []).length, 3, 'input, forward and output all default to drop');
  });
});
