/**
 * What `torvm service install|uninstall` will do to a service directory, as
 * data (PURE): the caller reads the directory, this decides, the caller acts.
 *
 *   install:    write each wanted file that is missing or different;
 *               leave identical files alone (idempotent);
 *               refuse a file someone else wrote (no marker) unless --force;
 *               remove a file we wrote that is no longer wanted (e.g. autostart turned off).
 *   uninstall:  remove every known file that carries our marker; leave foreign files alone.
 */
import { hasServiceMarker, type ServiceFile } from './service-description.ts';

/** The current content of each known file name; null when the file does not exist. */
export type ExistingFiles = Readonly<Record<string, string | null>>;

export interface InstallPlan {
  readonly write: readonly ServiceFile[];
  readonly unchanged: readonly string[];
  readonly remove: readonly string[];
  /** Files in the way that TorVM did not write: install must fail (nothing written). */
  readonly refused: readonly string[];
}

export function planInstall(wanted: readonly ServiceFile[], knownNames: readonly string[], existing: ExistingFiles, force: boolean): InstallPlan {
  const write: ServiceFile[] = [];
  const unchanged: string[] = [];
  const refused: string[] = [];
  for (const file of wanted) {
    const current = existing[file.name] ?? null;
    if (current === file.content) unchanged.push(file.name);
    else if (current !== null && !hasServiceMarker(current) && !force) refused.push(file.name);
    else write.push(file);
  }
  const wantedNames = new Set(wanted.map((f) => f.name));
  const remove = knownNames.filter((name) => !wantedNames.has(name) && hasServiceMarker(existing[name] ?? ''));
  return { write, unchanged, remove, refused };
}

export interface UninstallPlan {
  readonly remove: readonly string[];
  /** Known names present but not written by TorVM: left alone. */
  readonly foreign: readonly string[];
}

export function planUninstall(knownNames: readonly string[], existing: ExistingFiles): UninstallPlan {
  const present = knownNames.filter((name) => (existing[name] ?? null) !== null);
  return {
    remove: present.filter((name) => hasServiceMarker(existing[name] ?? '')),
    foreign: present.filter((name) => !hasServiceMarker(existing[name] ?? '')),
  };
}
