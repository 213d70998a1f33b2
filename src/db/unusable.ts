/**
 * The state database file exists but SQLite cannot use it (not a database,
 * corrupt). Restarting cannot fix that, so brainstem exits with the code pm2
 * does not restart, naming the file and what to do; the file is left as it is.
 */
export class UnusableDatabaseError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(
      `the state database ${file} cannot be used (${reason}). Move it aside to start with a new one ` +
        '(modes, sessions, usage and queued updates start empty), or put back a backup.',
    );
    this.name = 'UnusableDatabaseError';
  }
}
