/**
 * Central redaction. Every secret the controller creates or reads (the
 * control password, proxy passwords, bridge lines, the API token) is
 * registered here, and every log line is scrubbed before it reaches any
 * destination: file, stdout, or the GUI's ring buffer.
 */

export const REDACTED = '[redacted]';

/** Object keys whose values are always secret, wherever they appear. */
export const SECRET_KEYS = ['password', 'controlPassword', 'hashedControlPassword', 'token', 'apiToken', 'bridge', 'bridges', 'lines', 'cookie', 'authorization'] as const;

export class SecretRegistry {
  readonly #secrets = new Set<string>();
  #pattern: RegExp | null = null;

  /** Registers a value to scrub. Values shorter than 4 characters are ignored (too common to redact safely). */
  add(secret: string | undefined): void {
    if (secret === undefined || secret.length < 4 || this.#secrets.has(secret)) return;
    this.#secrets.add(secret);
    this.#pattern = null;
  }

  /** Replaces every registered secret in `text`, also in its JSON-escaped form. */
  scrub(text: string): string {
    if (this.#secrets.size === 0) return text;
    if (this.#pattern === null) {
      const forms = new Set<string>();
      for (const s of this.#secrets) {
        forms.add(s);
        forms.add(JSON.stringify(s).slice(1, -1));
      }
      // Longest first, so a secret containing another is replaced whole.
      const sorted = [...forms].sort((a, b) => b.length - a.length);
      this.#pattern = new RegExp(sorted.map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|'), 'g');
    }
    return text.replace(this.#pattern, REDACTED);
  }
}
