/**
 * The launchd daemon plist of TorVM for macOS (PURE). It renders here and is
 * golden-tested, but it has never been loaded by a real launchd: there is no
 * macOS machine in this project's CI, and the macOS host-network backend (pf)
 * is not written yet.
 */
import { SERVICE_MARKER, daemonArgv, validateServiceDescription, type ServiceDescription, type ServiceFile } from './service-description.ts';

export const LAUNCHD_LABEL = 'org.torvm.daemon';
export const LAUNCHD_PLIST = `${LAUNCHD_LABEL}.plist`;

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderLaunchdPlist(d: ServiceDescription): ServiceFile {
  validateServiceDescription(d);
  const args = [d.nodePath, ...daemonArgv(d)].map((a) => `    <string>${xml(a)}</string>`);
  const content = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<!DOCTYPE plist PUBLIC "-//Apple//DTD PLIST 1.0//EN" "http://www.apple.com/DTDs/PropertyList-1.0.dtd">',
    `<!-- ${SERVICE_MARKER} -->`,
    '<plist version="1.0">',
    '<dict>',
    '  <key>Label</key>',
    `  <string>${LAUNCHD_LABEL}</string>`,
    '  <key>ProgramArguments</key>',
    '  <array>',
    ...args,
    '  </array>',
    '  <key>UserName</key>',
    `  <string>${xml(d.user)}</string>`,
    '  <key>GroupName</key>',
    `  <string>${xml(d.group)}</string>`,
    '  <key>RunAtLoad</key>',
    `  <${d.autostart ? 'true' : 'false'}/>`,
    // Restart only after a crash, as systemd's Restart=on-failure.
    '  <key>KeepAlive</key>',
    '  <dict>',
    '    <key>SuccessfulExit</key>',
    '    <false/>',
    '  </dict>',
    '  <key>Umask</key>',
    '  <integer>63</integer>',
    '  <key>StandardErrorPath</key>',
    '  <string>/var/log/torvm.log</string>',
    '</dict>',
    '</plist>',
    '',
  ].join('\n');
  return { name: LAUNCHD_PLIST, content, mode: 0o644 };
}
