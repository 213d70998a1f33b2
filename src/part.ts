/**
 * A piece the service runs around the core (the tools, a face, a watcher).
 * It is built before the server listens and does nothing outside yet:
 * `start` (polling, watchers, notices) runs once the server listens, so an
 * instance that cannot listen starts nothing; `stop` runs before the core
 * drains its turns and closes the database.
 */
export interface Part {
  start?(): void;
  stop?(): Promise<void>;
}
