/**
 * Gathers the messages of a Telegram album (one `media_group_id`): Telegram
 * sends each photo as a message of its own, with no sign of which is the
 * last, so a group is handed on once no new part has come for `quietMs`
 * (Telegram sends the parts together, in one getUpdates answer as a rule).
 * One album, one turn.
 */
export class AlbumCollector<T> {
  private readonly groups = new Map<string, { items: T[]; timer: NodeJS.Timeout }>();

  constructor(
    private readonly quietMs: number,
    private readonly complete: (items: T[]) => void,
  ) {}

  /** Adds a part of the album `key` (unique per chat: chat id and media group id). */
  add(key: string, item: T): void {
    const group = this.groups.get(key);
    if (group) clearTimeout(group.timer);
    const items = [...(group?.items ?? []), item];
    this.groups.set(key, { items, timer: setTimeout(() => this.hand(key), this.quietMs) });
  }

  /** Hands on every album gathered so far, at once (for shutdown: nothing a user sent is dropped). */
  flush(): void {
    for (const key of [...this.groups.keys()]) this.hand(key);
  }

  private hand(key: string): void {
    const group = this.groups.get(key);
    if (!group) return;
    clearTimeout(group.timer);
    this.groups.delete(key);
    this.complete(group.items);
  }
}
