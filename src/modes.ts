import { ACTIVE, type Config, type ModeConfig } from './config.js';

/**
 * Resolves what a client or a user calls a mode: an id, an alias, `active`,
 * with any provider prefix (`brainstem/local`, `claude-code/local`) stripped.
 */
export class ModeRegistry {
  private readonly byName = new Map<string, ModeConfig>();

  constructor(readonly all: ModeConfig[]) {
    for (const m of all) {
      this.byName.set(m.id, m);
      for (const a of m.aliases) this.byName.set(a, m);
    }
  }

  /** The mode named, or undefined; `active` is not resolved here (see resolveRef). */
  find(name: string): ModeConfig | undefined {
    return this.byName.get(stripPrefix(name).toLowerCase());
  }

  /** `active` (with or without prefix) or no name at all → the active mode; otherwise as find(). */
  resolveRef(ref: string, active: () => ModeConfig): ModeConfig | undefined {
    const bare = stripPrefix(ref).toLowerCase();
    // `nope/` names nothing: it is not a way to say "active".
    return bare === ACTIVE || ref.trim() === '' ? active() : this.byName.get(bare);
  }

  ids(): string[] {
    return this.all.map((m) => m.id);
  }

  get(id: string): ModeConfig {
    const m = this.byName.get(id);
    if (!m) throw new Error(`no mode ${id}`);
    return m;
  }
}

export function stripPrefix(name: string): string {
  const slash = name.lastIndexOf('/');
  return (slash === -1 ? name : name.slice(slash + 1)).trim();
}

/**
 * Whether a switch to the mode loads its model: a llama mode whose `llama.models` entry has start
 * commands (the switcher runs them). Any other mode a switch only waits for: a Claude mode, or a
 * llama server nothing but its owner starts.
 */
export function loadsOnSwitch(llama: Pick<Config['llama'], 'models'>, mode: ModeConfig): boolean {
  const model = mode.kind === 'llama' ? mode.llamaModel : undefined;
  return model !== undefined && (llama.models[model]?.start.length ?? 0) > 0;
}
