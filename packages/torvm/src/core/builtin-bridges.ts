/**
 * The publicly listed default ("built-in") bridges, as data.
 *
 * Source: Tor Browser's `projects/tor-expert-bundle/pt_config.json` in
 * tor-browser-build (mirror tor-actions/tor-browser-build, commit
 * 00ff7fc6dd757ce2383a74c0eafa4f5fbfef62a5), copied 2026-11-25. These lines are
 * public (every Tor Browser ships them), so unlike user bridge lines they are
 * not secrets; they are still never logged, because they share the code path.
 *
 * meek: upstream's line has no fingerprint (the CDN's url picks the server),
 * which core/bridge-line.ts allows for meek_lite only. Public copies of the
 * Moat service's built-in list carry the same line (compared 2026-11-25).
 *
 * Left out on purpose:
 *   - conjure and webtunnel: the VM image ships no client for them.
 *
 * Snowflake caveat: the image's snowflake-client is Debian bookworm's 2.5.1,
 * older than the `fronts=` (plural) argument, so it may reach the broker
 * without domain fronting. See docs/proxies-and-bridges.md.
 */
import { parseBridgeLine, type Transport } from './bridge-line.ts';

/** Transports with built-in bridges, in the order a user is offered them. */
export const BUILTIN_TRANSPORTS = ['obfs4', 'snowflake', 'meek_lite'] as const satisfies readonly Transport[];
export type BuiltinTransport = (typeof BUILTIN_TRANSPORTS)[number];

/** Tor Browser's `recommendedDefault`: what `useBuiltin` means unless a transport is named. */
export const DEFAULT_BUILTIN_TRANSPORT: BuiltinTransport = 'obfs4';

const SNOWFLAKE_ARGS = 'url=https://voluble-torrone-fc39bf.netlify.app/ fronts=vuejs.org '
  + 'ice=stun:stun.epygi.com:3478,stun:stun.uls.co.za:3478,stun:stun.voipgate.com:3478,stun:stun.mixvoip.com:3478,'
  + 'stun:stun.nextcloud.com:3478,stun:stun.bethesda.net:3478,stun:stun.nextcloud.com:443 utls-imitate=hellorandomizedalpn';

/** The built-in bridge lines per transport (each passes parseBridgeLine; a unit test checks). */
export const BUILTIN_BRIDGES: Readonly<Record<BuiltinTransport, readonly string[]>> = {
  obfs4: [
    'obfs4 192.95.36.142:443 CDF2E852BF539B82BD10E27E9115A31734E378C2 cert=qUVQ0srL1JI/vO6V6m/24anYXiJD3QP2HgzUKQtQ7GRqqUvs7P+tG43RtAqdhLOALP7DJQ iat-mode=1',
    'obfs4 37.218.245.14:38224 D9A82D2F9C2F65A18407B1D2B764F130847F8B5D cert=bjRaMrr1BRiAW8IE9U5z27fQaYgOhX1UCmOpg2pFpoMvo6ZgQMzLsaTzzQNTlm7hNcb+Sg iat-mode=0',
    'obfs4 85.31.186.98:443 011F2599C0E9B27EE74B353155E244813763C3E5 cert=ayq0XzCwhpdysn5o0EyDUbmSOx3X/oTEbzDMvczHOdBJKlvIdHHLJGkZARtT4dcBFArPPg iat-mode=0',
    'obfs4 85.31.186.26:443 91A6354697E6B02A386312F68D82CF86824D3606 cert=PBwr+S8JTVZo6MPdHnkTwXJPILWADLqfMGoVvhZClMq/Urndyd42BwX9YFJHZnBB3H0XCw iat-mode=0',
    'obfs4 193.11.166.194:27015 2D82C2E354D531A68469ADF7F878FA6060C6BACA cert=4TLQPJrTSaDffMK7Nbao6LC7G9OW/NHkUwIdjLSS3KYf0Nv4/nQiiI8dY2TcsQx01NniOg iat-mode=0',
    'obfs4 193.11.166.194:27020 86AC7B8D430DAC4117E9F42C9EAED18133863AAF cert=0LDeJH4JzMDtkJJrFphJCiPqKx7loozKN7VNfuukMGfHO0Z8OGdzHVkhVAOfo1mUdv9cMg iat-mode=0',
    'obfs4 193.11.166.194:27025 1AE2C08904527FEA90C4C4F8C1083EA59FBC6FAF cert=ItvYZzW5tn6v3G4UnQa6Qz04Npro6e81AP70YujmK/KXwDFPTs3aHXcHp4n8Vt6w/bv8cA iat-mode=0',
    'obfs4 209.148.46.65:443 74FAD13168806246602538555B5521A0383A1875 cert=ssH+9rP8dG2NLDN2XuFw63hIO/9MNNinLmxQDpVa+7kTOa9/m+tGWT1SmSYpQ9uTBGa6Hw iat-mode=0',
    'obfs4 146.57.248.225:22 10A6CD36A537FCE513A322361547444B393989F0 cert=K1gDtDAIcUfeLqbstggjIw2rtgIKqdIhUlHp82XRqNSq/mtAjp1BIC9vHKJ2FAEpGssTPw iat-mode=0',
    'obfs4 45.145.95.6:27015 C5B7CD6946FF10C5B3E89691A7D3F2C122D2117C cert=TD7PbUO0/0k6xYHMPW3vJxICfkMZNdkRrb63Zhl5j9dW3iRGiCx0A7mPhe5T2EDzQ35+Zw iat-mode=0',
    'obfs4 51.222.13.177:80 5EDAC3B810E12B01F6FD8050D2FD3E277B289A08 cert=2uplIpLQ0q9+0qMFrK5pkaYRDOe460LL9WHBvatgkuRr/SL31wBOEupaMMJ6koRE6Ld0ew iat-mode=0',
  ],
  snowflake: [
    `snowflake 192.0.2.3:80 2B280B23E1107BB62ABFC40DDCC8824814F80A72 fingerprint=2B280B23E1107BB62ABFC40DDCC8824814F80A72 ${SNOWFLAKE_ARGS}`,
    `snowflake 192.0.2.4:80 8838024498816A039FCBBAB14E6F40A0843051FA fingerprint=8838024498816A039FCBBAB14E6F40A0843051FA ${SNOWFLAKE_ARGS}`,
  ],
  meek_lite: [
    'meek_lite 192.0.2.20:80 url=https://1603026938.rsc.cdn77.org front=www.phpmyadmin.net utls=HelloRandomizedALPN',
  ],
};

/** The lines `useBuiltin` stands for. */
export function builtinBridgeLines(transport: BuiltinTransport = DEFAULT_BUILTIN_TRANSPORT): readonly string[] {
  return BUILTIN_BRIDGES[transport];
}

/**
 * Whether these bridge settings need a pluggable-transport client (a
 * "managed proxy"). Tor refuses managed proxies under `Sandbox 1`, so the
 * boot torrc turns the seccomp sandbox off exactly when this is true.
 */
export function usesTransportPlugin(bridges: { enabled: boolean; useBuiltin: boolean; lines: readonly string[] }, builtin: readonly string[] = builtinBridgeLines()): boolean {
  if (!bridges.enabled) return false;
  return [...bridges.lines, ...(bridges.useBuiltin ? builtin : [])].some((line) => {
    const parsed = parseBridgeLine(line);
    return parsed.ok && parsed.bridge.transport !== 'vanilla';
  });
}
