/**
 * Gathers the messages of a Telegram album (one `media_group_id`): Telegram
 * sends each photo as a message of its own, with no sign of which is the
 * last, so a group is handed on once no new part has come for `quietMs`
 * (Telegram sends the parts together, in one getUpdates answer as a rule).
 * One album, one turn.
 */
export class AlbumCollector<T> {
  private readonly groups = new Map<
    string,
    { items: T[]; timer: NodeJS.Timeout; complete: (items: T[]) => void }
  >();

  constructor(private readonly quietMs: number) {}

  /**
   * Adds a part of the album `key` (unique per chat: chat id and media group
   * id). The first part gets the whole album, once gathered; the others get
   * undefined (their album is already on its way).
   */
  add(key: string, item: T): Promise<T[]> | undefined {
    const group = this.groups.get(key);
    if (group) {
      clearTimeout(group.timer);
      group.items.push(item);
      group.timer = setTimeout(() => this.hand(key), this.quietMs);
      return undefined;
    }
    return new Promise((complete) => {
      const timer = setTimeout(() => this.hand(key), this.quietMs);
      this.groups.set(key, { items: [item], timer, complete });
    });
  }

  /**
   * Ends the gathering (brainstem stops): an album still open is never
   * handed on. Its turn is stopped with the others and tells the user.
   */
  stop(): void {
    for (const group of this.groups.values()) clearTimeout(group.timer);
    this.groups.clear();
  }

  private hand(key: string): void {
    const group = this.groups.get(key);
    if (!group) return;
    clearTimeout(group.timer);
    this.groups.delete(key);
    group.complete(group.items);
  }
}
