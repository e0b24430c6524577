/**
 * `torvm gui` and the default `torvm`: the daemon in service mode with its
 * loopback GUI server, and opening the GUI in the desktop user's browser.
 *
 * The daemon runs as root (it owns the firewall); a browser must never. Under
 * sudo the opener runs as SUDO_USER (`runuser -u USER -- xdg-open URL`); as
 * plain root with no SUDO_USER, nothing is opened and the URL is printed.
 */
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { callApi } from '../../api/client.ts';
import { TorvmError, describeError } from '../../core/errors.ts';
import { runDaemon } from '../../daemon/daemon.ts';
import { CORE_ROUTES, type Route } from '../../api/routes.ts';
import { TOR_ROUTES } from '../../api/routes-tor.ts';
import { createGuiRoutes, createGuiUrlRoute, guiUrlSchema } from '../../api/routes-gui.ts';
import { loadGuiAssets, startGuiServer, type GuiServer } from '../../api/gui-server.ts';
import { createCommandRunner } from '../../platform/exec.ts';
import { currentOs, platformDefaults, type HostOs } from '../../platform/index.ts';
import { effectiveConfig, type CliIo, type GlobalOptions } from '../context.ts';
import type { CommandRunnerFn } from '../main.ts';

/** Where the built GUI is: TORVM_GUI_DIR, else packages/gui/dist next to this package. */
export function guiAssetsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.TORVM_GUI_DIR ?? fileURLToPath(new URL('../../../../gui/dist', import.meta.url));
}

export interface OpenerContext {
  platform: HostOs;
  uid: number | null;
  /** SUDO_USER, when run through sudo. */
  sudoUser: string | undefined;
  sudoUid: number | undefined;
}

/** The command that opens `url` for the desktop user, or null when only printing is safe. Pure. */
export function openerCommand(url: string, c: OpenerContext): { file: string; argv: string[]; env: Record<string, string> } | null {
  if (c.platform === 'darwin') {
    if (c.uid === 0) return c.sudoUser && c.sudoUser !== 'root' ? { file: 'sudo', argv: ['-u', c.sudoUser, '--', 'open', url], env: {} } : null;
    return { file: 'open', argv: [url], env: {} };
  }
  if (c.platform === 'win32') return { file: 'explorer.exe', argv: [url], env: {} };
  if (c.uid !== 0) return { file: 'xdg-open', argv: [url], env: {} };
  if (!c.sudoUser || c.sudoUser === 'root' || !/^[a-z_][a-z0-9_.-]*\$?$/i.test(c.sudoUser)) return null;
  // sudo drops the session variables the desktop's opener needs; the user's runtime dir holds them.
  const env: Record<string, string> = {};
  if (c.sudoUid !== undefined) {
    env.XDG_RUNTIME_DIR = `/run/user/${c.sudoUid}`;
    env.DBUS_SESSION_BUS_ADDRESS = `unix:path=/run/user/${c.sudoUid}/bus`;
  }
  return { file: 'runuser', argv: ['-u', c.sudoUser, '--', 'xdg-open', url], env };
}

/** Opens the GUI, or prints its URL when no browser can be opened safely. */
export async function openGui(url: string, io: CliIo, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const sudoUid = env.SUDO_UID !== undefined && /^\d+$/.test(env.SUDO_UID) ? Number(env.SUDO_UID) : undefined;
  const cmd = openerCommand(url, { platform: currentOs(), uid: typeof process.getuid === 'function' ? process.getuid() : null, sudoUser: env.SUDO_USER, sudoUid });
  if (cmd) {
    const passthrough: Record<string, string> = {};
    for (const k of ['DISPLAY', 'WAYLAND_DISPLAY', 'XAUTHORITY', 'XDG_RUNTIME_DIR', 'DBUS_SESSION_BUS_ADDRESS', 'HOME']) {
      const v = env[k];
      if (v !== undefined) passthrough[k] = v;
    }
    try {
      // No logger: the URL carries the token.
      await createCommandRunner().run(cmd.file, cmd.argv, { timeoutMs: 15_000, env: { ...passthrough, ...cmd.env } });
      io.err('Opened the TorVM GUI in your browser.');
      return;
    } catch (err) {
      io.err(`Could not open a browser (${describeError(err).split('\n')[0]}).`);
    }
  }
  io.out(`Open the TorVM GUI at: ${url}`);
}

/** The default `torvm`: the daemon in service mode, its GUI server, and (unless --headless) the browser. */
export async function runServiceWithGui(opts: GlobalOptions, io: CliIo): Promise<number> {
  const { config, source } = await effectiveConfig(opts);
  const guiRoutes = createGuiRoutes(platformDefaults());
  const apiRoutes: Route[] = [...TOR_ROUTES, ...guiRoutes];
  const urlHolder: { url: string | null } = { url: null };
  let gui: GuiServer | null = null;
  try {
    const { exitCode } = await runDaemon({
      config, configPath: source.startsWith('(') ? null : source, mode: 'service', verbose: opts.verbose ?? false,
      progress: (line) => io.err(line),
      // The socket also answers "where is the GUI?" for `torvm gui`; the GUI server itself does not.
      routes: [...apiRoutes, createGuiUrlRoute(urlHolder)],
      onReady: async (control) => {
        const assets = loadGuiAssets(guiAssetsDir());
        if (assets.size === 0) io.err(`warning: the GUI is not built (${guiAssetsDir()}); run \`npm run build -w @torvm/gui\`. The API still works.`);
        gui = await startGuiServer({ port: config.api.guiPort, routes: [...CORE_ROUTES, ...apiRoutes], control, assets });
        urlHolder.url = gui.url;
        io.out(opts.json ? JSON.stringify({ guiUrl: gui.url }) : `TorVM GUI: ${gui.url}`);
        if (!opts.headless) await openGui(gui.url, io);
      },
    });
    return exitCode;
  } finally {
    await (gui as GuiServer | null)?.close();
  }
}

/** One GET on the daemon's Unix socket; a missing daemon becomes a clear error. */
/** Registers `torvm gui`: asks the running daemon for its GUI address and opens it. */
export function registerGuiCommand(program: Command, io: CliIo, run: CommandRunnerFn): void {
  program.command('gui')
    .description("open the GUI of the running daemon in the desktop user's browser (never as root)")
    .action(run(async (opts) => {
      const { config } = await effectiveConfig(opts);
      const { url } = await callApi(config.api.socketPath, 'GET', '/v1/gui-url', guiUrlSchema, undefined, 10_000);
      if (url === null) throw new TorvmError('ERR_NOT_AVAILABLE', 'the running daemon has no GUI', { hint: 'start it with `sudo torvm` (not `torvm up`)' });
      if (opts.json) io.out(JSON.stringify({ guiUrl: url }));
      else await openGui(url, io);
      return 0;
    }));
}
