import type { ModeConfig } from '../../src/config.js';

/** A mode as the loaded config gives it: the fields a test does not name take the schema's defaults. */
export function modeConfig(mode: Partial<ModeConfig> & Pick<ModeConfig, 'id' | 'kind'>): ModeConfig {
  return { description: '', aliases: [], allowedTools: [], deniedTools: [], ...mode };
}
