import type Database from 'better-sqlite3';

/**
 * Schema migrations, numbered. A migration is never edited once it has shipped:
 * add a new one. `user_version` records how far a database has come.
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
  /**
   * Whether this database needs the SQL (absent: every database does). For a migration that mends
   * what only some databases at the version before have: the version is recorded either way.
   */
  needed?: (db: Database.Database) => boolean;
}

export const migrations: Migration[] = [
  {
    version: 1,
    name: 'core',
    sql: `
      CREATE TABLE kv (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE TABLE sessions (
        session_key TEXT NOT NULL,
        mode TEXT NOT NULL,
        brain_session_id TEXT NOT NULL,
        cwd TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (session_key, mode)
      );
      CREATE TABLE usage (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        mode TEXT NOT NULL,
        session_key TEXT NOT NULL,
        brain_session_id TEXT,
        source TEXT NOT NULL,
        cost_usd REAL NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cache_read_tokens INTEGER NOT NULL DEFAULT 0,
        cache_write_tokens INTEGER NOT NULL DEFAULT 0,
        duration_ms INTEGER NOT NULL DEFAULT 0,
        error TEXT
      );
      CREATE INDEX usage_ts ON usage (ts);
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        tool TEXT NOT NULL,
        caller TEXT NOT NULL,
        args TEXT NOT NULL,
        ok INTEGER NOT NULL,
        exit_code INTEGER,
        duration_ms INTEGER NOT NULL,
        error TEXT
      );
      CREATE INDEX audit_ts ON audit (ts);
      CREATE TABLE notices (
        id INTEGER PRIMARY KEY,
        ts INTEGER NOT NULL,
        kind TEXT NOT NULL,
        dedupe_key TEXT UNIQUE,
        text TEXT NOT NULL,
        sent_at INTEGER
      );
    `,
  },
  {
    version: 2,
    name: 'telegram history',
    sql: `
      CREATE TABLE telegram_history (
        id INTEGER PRIMARY KEY,
        chat_key TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
        content TEXT NOT NULL,
        ts INTEGER NOT NULL
      );
      CREATE INDEX telegram_history_chat ON telegram_history (chat_key, id);
    `,
  },
  {
    version: 3,
    name: 'conversation histories',
    sql: `
      CREATE TABLE conversation_heads (
        history_digest TEXT PRIMARY KEY,
        session_key TEXT NOT NULL,
        updated_at INTEGER NOT NULL
      );
      CREATE INDEX conversation_heads_updated ON conversation_heads (updated_at);
    `,
  },
  {
    version: 4,
    name: 'usage billing',
    // Which account paid a Claude turn: the subscription (its monthly Agent SDK credit) or an API key.
    // Older rows predate the column: those that cost something are counted as subscription turns,
    // so the first cycle's meter errs on the side of spent.
    sql: `
      ALTER TABLE usage ADD COLUMN billing TEXT CHECK (billing IN ('subscription', 'api_key'));
      UPDATE usage SET billing = 'subscription' WHERE cost_usd > 0;
      CREATE INDEX usage_billing_ts ON usage (billing, ts, cost_usd);
    `,
  },
  {
    version: 5,
    name: 'telegram front',
    sql: `
      CREATE TABLE front_updates (
        update_id INTEGER PRIMARY KEY,
        kind TEXT NOT NULL,
        body TEXT NOT NULL,
        received_at INTEGER NOT NULL
      );
      CREATE TABLE front_commands (
        owner TEXT NOT NULL CHECK (owner IN ('brainstem', 'openclaw')),
        scope TEXT NOT NULL,
        lang TEXT NOT NULL,
        commands TEXT NOT NULL,
        PRIMARY KEY (owner, scope, lang)
      );
    `,
  },
  {
    version: 6,
    name: 'menu chat ids as numbers',
    // A chat id written in digits is that number (commands-merge.ts); versions before kept it as
    // the text given ("123"), a scope apart from 123's. Such a row becomes 123's, unless a row for
    // 123 was set since: that one, the newer, stays (the older is the list Telegram replaced).
    sql: `
      UPDATE OR IGNORE front_commands
        SET scope = json_set(scope, '$.chat_id', CAST(json_extract(scope, '$.chat_id') AS INTEGER))
        WHERE json_type(scope, '$.chat_id') = 'text'
          AND CAST(CAST(json_extract(scope, '$.chat_id') AS INTEGER) AS TEXT) = json_extract(scope, '$.chat_id');
      DELETE FROM front_commands
        WHERE json_type(scope, '$.chat_id') = 'text'
          AND CAST(CAST(json_extract(scope, '$.chat_id') AS INTEGER) AS TEXT) = json_extract(scope, '$.chat_id');
    `,
  },
  {
    version: 7,
    name: 'the client instructions a Claude session was told',
    // A resumed session is told only what changed in them (brains/claude-code/prompt.ts); kept
    // here, a session resumed after a restart is not told all of them again (~50,000 characters
    // for OpenClaw's). NULL: not known, so all of them.
    sql: `
      ALTER TABLE sessions ADD COLUMN instructions TEXT;
    `,
  },
  {
    version: 8,
    name: 'the last answer a Claude session gave',
    // A digest of it (historyDigest of that one message): a resumed session is told the turns the
    // client's history holds after it, those another mode answered (brains/claude-code/prompt.ts).
    // NULL: not known, so only the messages after the last assistant one, as before.
    sql: `
      ALTER TABLE sessions ADD COLUMN answered TEXT;
    `,
  },
  {
    version: 9,
    name: 'the files of media messages sent on the direct route',
    // Telegram says a photo or file was replaced only as an edit, like a caption's: the file a
    // message held tells the two apart, after a restart too (handlers/telegram/route/sent-files.ts).
    sql: `
      CREATE TABLE telegram_files (
        id INTEGER PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        message_id INTEGER NOT NULL,
        file_unique_id TEXT NOT NULL,
        UNIQUE (chat_id, message_id)
      );
    `,
  },
  {
    version: 10,
    name: 'usage whose cost is estimated',
    // A Claude turn whose CLI died before it said the cost: 'estimated' when priced from the tokens
    // the stream showed, 'unknown' when a model's price is not known (the cost leaves its tokens out).
    // NULL: the cost the brain reported.
    sql: `
      ALTER TABLE usage ADD COLUMN cost_basis TEXT CHECK (cost_basis IN ('estimated', 'unknown'));
    `,
  },
  {
    version: 11,
    name: 'the kind of file a media message held',
    // A photo swapped for a video is told to the brain as such, not as a photo replaced by a photo
    // (handlers/telegram/route/media-messages.ts). NULL: remembered before kinds were, so not known.
    sql: `
      ALTER TABLE telegram_files ADD COLUMN kind TEXT;
    `,
  },
  {
    version: 12,
    name: 'notices for one chat',
    // A notice for the one chat that asked for what it tells (how a switch a restart cut ended),
    // kept and retried as the notify chats' are. NULL: the notify chats'.
    sql: `
      ALTER TABLE notices ADD COLUMN chat_id INTEGER;
      ALTER TABLE notices ADD COLUMN topic_id INTEGER;
    `,
  },
  {
    version: 13,
    name: 'direct-route turns under way',
    // A message whose answer, or a tool run whose result, has not come yet (running or queued): one a
    // crash leaves here is told to its chat at the next start (handlers/telegram/route/cut-turns.ts).
    // topic_id NULL: no topic.
    sql: `
      CREATE TABLE telegram_turns (
        key TEXT PRIMARY KEY,
        chat_id INTEGER NOT NULL,
        topic_id INTEGER,
        kind TEXT NOT NULL CHECK (kind IN ('answer', 'tool')),
        lang TEXT NOT NULL,
        said TEXT NOT NULL,
        ts INTEGER NOT NULL
      );
    `,
  },
  {
    version: 14,
    name: 'the kind of a turn under way, on a database the first migration 13 made',
    // Migration 13 first shipped (92c81cc) without `kind`, and was edited to add it: a database the
    // first one made is at version 13 without the column, so every turn's record and the crash
    // notice at start failed ("table telegram_turns has no column named kind"). Its rows predate
    // tool runs being recorded: they are answers.
    sql: `
      ALTER TABLE telegram_turns ADD COLUMN kind TEXT NOT NULL DEFAULT 'answer' CHECK (kind IN ('answer', 'tool'));
    `,
    needed: (db) => !hasColumn(db, 'telegram_turns', 'kind'),
  },
  {
    version: 15,
    name: 'usage whose tokens the upstream did not count',
    // 1: the upstream reported no token counts (an Ollama that ignores include_usage), so the
    // row's 0 tokens are not a count; /usage says how many turns its totals leave out. NULL: counted.
    sql: `
      ALTER TABLE usage ADD COLUMN tokens_uncounted INTEGER CHECK (tokens_uncounted IN (1));
    `,
  },
  {
    version: 16,
    name: 'a turn under way whose answer was on its way to Telegram',
    // 1: the answer's final text (a tool run's result) was handed to Telegram, which may have shown it
    // before a crash: the notice at the next start says it may have come, not that it will not. NULL: not yet.
    sql: `
      ALTER TABLE telegram_turns ADD COLUMN delivering INTEGER CHECK (delivering IN (1));
    `,
  },
];

function hasColumn(db: Database.Database, table: string, column: string): boolean {
  return db
    .prepare<[string], { name: string }>('SELECT name FROM pragma_table_info(?)')
    .all(table)
    .some((c) => c.name === column);
}
