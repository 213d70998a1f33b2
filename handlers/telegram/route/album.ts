/** One album being gathered, as its first part gets it. */
export interface Gathering<T> {
  /** Every part, once no new one has come for `quietMs` (or once `end` is called). */
  parts: Promise<T[]>;
  /**
   * Hands the album on now with the parts come so far (its turn was stopped while it gathered):
   * a part that comes later starts an album of its own, so it is not held for a turn that is over.
   */
  end(): void;
}

interface Group<T> {
  items: T[];
  timer: NodeJS.Timeout;
  complete: (items: T[]) => void;
}

/**
 * Gathers the messages of a Telegram album (one `media_group_id`): Telegram
 * sends each photo as a message of its own, with no sign of which is the
 * last, so a group is handed on once no new part has come for `quietMs`
 * (Telegram sends the parts together, in one getUpdates answer as a rule).
 * One album, one turn.
 */
export class AlbumCollector<T> {
  private readonly groups = new Map<string, Group<T>>();

  constructor(private readonly quietMs: number) {}

  /**
   * Adds a part of the album `key` (unique per chat: chat id and media group
   * id). The first part gets the whole album, once gathered; the others get
   * undefined (their album is already on its way).
   */
  add(key: string, item: T): Gathering<T> | undefined {
    const open = this.groups.get(key);
    if (open) {
      clearTimeout(open.timer);
      open.items.push(item);
      open.timer = setTimeout(() => this.hand(key, open), this.quietMs);
      return undefined;
    }
    let complete: (items: T[]) => void = () => undefined;
    const parts = new Promise<T[]>((resolve) => {
      complete = resolve;
    });
    const group: Group<T> = {
      items: [item],
      timer: setTimeout(() => this.hand(key, group), this.quietMs),
      complete,
    };
    this.groups.set(key, group);
    return { parts, end: () => this.hand(key, group) };
  }

  /**
   * Ends the gathering (brainstem stops): an album still open is never
   * handed on. Its turn is stopped with the others and tells the user.
   */
  stop(): void {
    for (const group of this.groups.values()) clearTimeout(group.timer);
    this.groups.clear();
  }

  /** Hands `group` on, unless it was already (a later album of the same key is not this one). */
  private hand(key: string, group: Group<T>): void {
    if (this.groups.get(key) !== group) return;
    clearTimeout(group.timer);
    this.groups.delete(key);
    group.complete(group.items);
  }
}
