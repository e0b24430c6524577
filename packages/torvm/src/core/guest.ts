/**
 * Facts about the guest image that the controller's renderers rely on.
 * image/guest/init and the image builder must agree with these.
 */
export const GUEST = {
  /** Mount point of the persistent state disk inside the VM. */
  stateMount: '/state',
  /** Tor's DataDirectory, on the state disk. */
  torDataDirectory: '/state/tor',
  /** The unprivileged user Tor drops to. */
  torUser: 'tor',
  /** Pluggable-transport client binaries shipped in the image, by transport. */
  transportPlugins: {
    obfs4: '/usr/bin/obfs4proxy',
    meek_lite: '/usr/bin/obfs4proxy',
    snowflake: '/usr/bin/snowflake-client',
  } as Readonly<Record<string, string>>,
  /** Automapped addresses for .onion names (AutomapHostsOnResolve). */
  virtualAddrNetwork: '10.192.0.0/10',
  /** fw_cfg names the guest reads its configuration from. */
  fwCfg: {
    torrc: 'opt/org.torvm/torrc',
    guestConfig: 'opt/org.torvm/guest.env',
    entropySeed: 'opt/org.torvm/seed',
  },
} as const;

export type GuestArch = 'x86_64' | 'aarch64';
