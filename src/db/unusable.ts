/**
 * The state database file exists but this brainstem cannot use it (not a
 * database, corrupt, or migrated by a newer brainstem). Restarting cannot fix
 * that, so brainstem exits with the code pm2 does not restart, naming the file
 * and what to do; the file is left as it is.
 */
export class UnusableDatabaseError extends Error {
  constructor(
    readonly file: string,
    reason: string,
    advice = 'Move it aside to start with a new one (modes, sessions, usage and queued updates start empty), or put back a backup.',
  ) {
    super(`the state database ${file} cannot be used (${reason}). ${advice}`);
    this.name = 'UnusableDatabaseError';
  }
}
